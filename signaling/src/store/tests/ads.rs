//! Ads, breaks, events and entitlements on both backends.

use super::stores;
use crate::store::{now_ms, NewAd, NewBreak};

fn creative(title: &str) -> NewAd {
    NewAd {
        title: title.into(),
        creative_path: Some(format!("ads/{title}.mp4")),
        mime_type: "video/mp4".into(),
        size_bytes: 1000,
        width: 640,
        height: 360,
        duration_ms: 6000,
        click_url: "https://example.com/".into(),
        skip_after_s: Some(2),
        weight: 1,
        ..NewAd::default()
    }
}

#[tokio::test]
async fn ads_are_listed_retired_and_keep_their_dates() {
    for store in stores().await {
        let now = now_ms();
        let a = store.insert_ad(&creative("a")).await.unwrap();
        let b = store
            .insert_ad(&NewAd {
                starts_ms: Some(now + 60_000),
                ..creative("b")
            })
            .await
            .unwrap();
        assert!(a.active(now));
        assert!(!b.active(now), "not yet inside its dates");
        assert!(b.active(now + 61_000));
        let listed = store.list_ads().await.unwrap();
        assert_eq!(
            listed.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![b.id, a.id]
        );
        assert!(store.retire_ad(a.id).await.unwrap());
        let a = store.ad(a.id).await.unwrap().unwrap();
        assert!(!a.active(now), "a retired ad is never picked");
        assert!(!store.retire_ad(9_999).await.unwrap());
    }
}

#[tokio::test]
async fn a_tracking_event_counts_once_and_reports_add_up() {
    for store in stores().await {
        let ad = store.insert_ad(&creative("c")).await.unwrap();
        let brk = store
            .insert_break(&NewBreak {
                broadcast: "demo".into(),
                recording: Some("r1".into()),
                triggered_by: "m-alice".into(),
                started_ms: now_ms(),
                position_ms: 5_000,
                duration_ms: 30_000,
                pod: vec![ad.id],
            })
            .await
            .unwrap();
        assert_eq!(brk.pod_ids(), vec![ad.id]);
        assert!(store
            .record_ad_event(brk.id, ad.id, "s1", "impression", None)
            .await
            .unwrap());
        assert!(
            !store
                .record_ad_event(brk.id, ad.id, "s1", "impression", None)
                .await
                .unwrap(),
            "the same hit again adds nothing"
        );
        store
            .record_ad_event(brk.id, ad.id, "s2", "impression", None)
            .await
            .unwrap();
        store
            .record_ad_event(brk.id, ad.id, "s1", "complete", None)
            .await
            .unwrap();
        store
            .record_ad_event(brk.id, ad.id, "s2", "error", Some(405))
            .await
            .unwrap();
        let events = store.ad_events(brk.id, "s2").await.unwrap();
        assert_eq!(
            events,
            vec![
                (ad.id, "impression".to_owned(), None),
                (ad.id, "error".to_owned(), Some(405))
            ]
        );
        let all = store.ad_figures().await.unwrap();
        let figures = all.iter().find(|f| f.ad_id == ad.id).unwrap();
        assert_eq!(
            (figures.impressions, figures.completes, figures.errors),
            (2, 1, 1)
        );
        let per = store.broadcast_ad_figures("demo").await.unwrap();
        assert_eq!(per.len(), 1);
        assert!(store
            .broadcast_ad_figures("other")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.breaks_of_recording("r1").await.unwrap(),
            vec![brk.clone()]
        );
        assert_eq!(store.last_break("demo").await.unwrap(), Some(brk));
    }
}

#[tokio::test]
async fn an_entitlement_holds_until_it_expires_or_is_revoked() {
    for store in stores().await {
        let now = now_ms();
        assert_eq!(
            store.entitlement("u-1", "ad-free", now).await.unwrap(),
            None
        );
        store
            .grant_entitlement("u-1", "ad-free", now + 1_000, "m-admin")
            .await
            .unwrap();
        assert_eq!(
            store.entitlement("u-1", "ad-free", now).await.unwrap(),
            Some(now + 1_000)
        );
        assert_eq!(
            store
                .entitlement("u-1", "ad-free", now + 1_000)
                .await
                .unwrap(),
            None,
            "over at its end"
        );
        store
            .grant_entitlement("u-1", "ad-free", now + 5_000, "m-admin")
            .await
            .unwrap();
        assert_eq!(
            store
                .entitlement("u-1", "ad-free", now + 2_000)
                .await
                .unwrap(),
            Some(now + 5_000),
            "a new grant replaces the old end"
        );
        assert!(store.revoke_entitlement("u-1", "ad-free").await.unwrap());
        assert_eq!(
            store.entitlement("u-1", "ad-free", now).await.unwrap(),
            None
        );
    }
}
