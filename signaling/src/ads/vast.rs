//! VAST 4.2 documents (IAB), written with `quick-xml`: one pod of linear
//! ads, or an empty response (`<VAST version="4.2"/>`, "no ad", which an
//! entitled viewer or an empty inventory gets).
//!
//! Invariants: every document validates against the IAB's VAST 4.2 XSD
//! (the HTTP tests run `xmllint --schema` on them); element order is the
//! XSD's sequence order; every URL goes out in CDATA, so its `&` needs no
//! escaping, and `[ERRORCODE]` stays a macro for the player to fill
//! (the XSD checks URIs with macros filled, as the player sends them).
//! Uploaded creatives are `InLine` ads; an ad that is an external VAST tag
//! is a `Wrapper` around that tag, carrying our tracking, which the player
//! follows (to a bounded depth, see `watch`'s ad player).

use std::io::Cursor;

use quick_xml::events::{BytesCData, BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::store::Ad;

/// The tracking URLs of one ad in one break for one session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracking {
    pub impression: String,
    /// With the `[ERRORCODE]` macro in it.
    pub error: String,
    pub start: String,
    pub first_quartile: String,
    pub midpoint: String,
    pub third_quartile: String,
    pub complete: String,
    pub skip: String,
    /// Fired on click-through (`ClickTracking`).
    pub click: String,
    /// The companion banner was shown (`creativeView`), clicked.
    pub companion_view: String,
    pub companion_click: String,
}

/// One ad of a pod as served.
#[derive(Debug, Clone)]
pub struct Served<'a> {
    pub ad: &'a Ad,
    /// Where the creative is fetched (for an uploaded one).
    pub media_url: String,
    /// Where its companion banner is fetched, if it has one.
    pub companion_url: Option<String>,
    pub tracking: Tracking,
}

const NS: &str = "http://www.iab.com/VAST";

type W = Writer<Cursor<Vec<u8>>>;

fn writer() -> W {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .expect("writing to memory cannot fail");
    w
}

fn finish(w: W) -> String {
    String::from_utf8(w.into_inner().into_inner()).expect("quick-xml writes UTF-8")
}

/// "No ad": what an entitled viewer, or a break with no inventory, gets.
pub fn empty() -> String {
    let mut w = writer();
    w.create_element("VAST")
        .with_attribute(("version", "4.2"))
        .with_attribute(("xmlns", NS))
        .write_empty()
        .expect("writing to memory cannot fail");
    finish(w)
}

/// A pod: the ads in play order (`sequence` 1, 2, …).
pub fn pod(break_id: i64, session: &str, ads: &[Served<'_>]) -> String {
    let mut w = writer();
    w.create_element("VAST")
        .with_attribute(("version", "4.2"))
        .with_attribute(("xmlns", NS))
        .write_inner_content(|w| {
            for (i, served) in ads.iter().enumerate() {
                write_ad(w, break_id, session, i + 1, served)?;
            }
            Ok(())
        })
        .expect("writing to memory cannot fail");
    finish(w)
}

fn cdata(w: &mut W, name: &str, url: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_cdata_content(BytesCData::new(url))?;
    Ok(())
}

fn text(w: &mut W, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// `HH:MM:SS.mmm` (VAST's `Duration` and `skipoffset`).
pub fn timecode(ms: i64) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn write_ad(
    w: &mut W,
    break_id: i64,
    session: &str,
    sequence: usize,
    served: &Served<'_>,
) -> std::io::Result<()> {
    let ad = served.ad;
    let t = &served.tracking;
    let id = ad.id.to_string();
    let sequence = sequence.to_string();
    w.create_element("Ad")
        .with_attribute(("id", id.as_str()))
        .with_attribute(("sequence", sequence.as_str()))
        .write_inner_content(|w| {
            let body = |w: &mut W| -> std::io::Result<()> {
                w.create_element("AdSystem")
                    .with_attribute(("version", env!("CARGO_PKG_VERSION")))
                    .write_text_content(BytesText::new("relaycast"))?;
                cdata(w, "Error", &t.error)?;
                w.create_element("Impression")
                    .with_attribute(("id", id.as_str()))
                    .write_cdata_content(BytesCData::new(&t.impression))?;
                if ad.vast_tag_url.is_none() {
                    text(w, "AdServingId", &format!("{break_id}-{session}-{id}"))?;
                    text(w, "AdTitle", &ad.title)?;
                }
                w.create_element("Creatives").write_inner_content(|w| {
                    w.create_element("Creative")
                        .with_attribute(("id", id.as_str()))
                        .with_attribute(("adId", id.as_str()))
                        .write_inner_content(|w| write_creative(w, served))?;
                    if let (Some(url), None) = (&served.companion_url, &ad.vast_tag_url) {
                        write_companion(w, served, url)?;
                    }
                    Ok(())
                })?;
                if let Some(tag) = &ad.vast_tag_url {
                    cdata(w, "VASTAdTagURI", tag)?;
                }
                Ok(())
            };
            if ad.vast_tag_url.is_some() {
                w.create_element("Wrapper")
                    .with_attribute(("followAdditionalWrappers", "true"))
                    .write_inner_content(body)?;
            } else {
                w.create_element("InLine").write_inner_content(body)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_creative(w: &mut W, served: &Served<'_>) -> std::io::Result<()> {
    let ad = served.ad;
    let t = &served.tracking;
    let skip = ad.skip_after_s.map(|s| timecode(s * 1000));
    let mut linear = w.create_element("Linear");
    if let Some(skip) = &skip {
        linear = linear.with_attribute(("skipoffset", skip.as_str()));
    }
    linear.write_inner_content(|w| {
        w.create_element("TrackingEvents")
            .write_inner_content(|w| {
                for (event, url) in [
                    ("start", &t.start),
                    ("firstQuartile", &t.first_quartile),
                    ("midpoint", &t.midpoint),
                    ("thirdQuartile", &t.third_quartile),
                    ("complete", &t.complete),
                    ("skip", &t.skip),
                ] {
                    w.create_element("Tracking")
                        .with_attribute(("event", event))
                        .write_cdata_content(BytesCData::new(url))?;
                }
                Ok(())
            })?;
        if ad.vast_tag_url.is_some() {
            // A wrapper's linear carries only tracking and click tracking:
            // the wrapped tag has the media and the landing page.
            return w
                .create_element("VideoClicks")
                .write_inner_content(|w| cdata(w, "ClickTracking", &t.click))
                .map(|_| ());
        }
        text(w, "Duration", &timecode(ad.duration_ms))?;
        w.create_element("MediaFiles").write_inner_content(|w| {
            let (width, height, size) = (
                ad.width.to_string(),
                ad.height.to_string(),
                ad.size_bytes.to_string(),
            );
            w.create_element("MediaFile")
                .with_attribute(("id", ad.id.to_string().as_str()))
                .with_attribute(("delivery", "progressive"))
                .with_attribute(("type", ad.mime_type.as_str()))
                .with_attribute(("width", width.as_str()))
                .with_attribute(("height", height.as_str()))
                .with_attribute(("fileSize", size.as_str()))
                .with_attribute(("maintainAspectRatio", "true"))
                .write_cdata_content(BytesCData::new(&served.media_url))?;
            Ok(())
        })?;
        w.create_element("VideoClicks").write_inner_content(|w| {
            cdata(w, "ClickTracking", &t.click)?;
            if !ad.click_url.is_empty() {
                cdata(w, "ClickThrough", &ad.click_url)?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    if ad.vast_tag_url.is_none() {
        w.create_element("UniversalAdId")
            .with_attribute(("idRegistry", "relaycast"))
            .write_text_content(BytesText::new(&ad.id.to_string()))?;
    }
    Ok(())
}

/// A companion banner: its own `Creative` beside the linear one.
fn write_companion(w: &mut W, served: &Served<'_>, url: &str) -> std::io::Result<()> {
    let ad = served.ad;
    let t = &served.tracking;
    let (cid, aid, width, height) = (
        format!("{}-companion", ad.id),
        ad.id.to_string(),
        ad.companion_width.to_string(),
        ad.companion_height.to_string(),
    );
    w.create_element("Creative")
        .with_attribute(("id", cid.as_str()))
        .with_attribute(("adId", aid.as_str()))
        .write_inner_content(|w| {
            w.create_element("CompanionAds").write_inner_content(|w| {
                w.create_element("Companion")
                    .with_attribute(("id", cid.as_str()))
                    .with_attribute(("width", width.as_str()))
                    .with_attribute(("height", height.as_str()))
                    .write_inner_content(|w| {
                        w.create_element("StaticResource")
                            .with_attribute(("creativeType", ad.companion_mime.as_str()))
                            .write_cdata_content(BytesCData::new(url))?;
                        text(w, "AltText", &ad.title)?;
                        if !ad.click_url.is_empty() {
                            cdata(w, "CompanionClickThrough", &ad.click_url)?;
                        }
                        w.create_element("CompanionClickTracking")
                            .with_attribute(("id", "relaycast"))
                            .write_cdata_content(BytesCData::new(&t.companion_click))?;
                        w.create_element("TrackingEvents")
                            .write_inner_content(|w| {
                                w.create_element("Tracking")
                                    .with_attribute(("event", "creativeView"))
                                    .write_cdata_content(BytesCData::new(&t.companion_view))?;
                                Ok(())
                            })?;
                        Ok(())
                    })?;
                Ok(())
            })?;
            w.create_element("UniversalAdId")
                .with_attribute(("idRegistry", "relaycast"))
                .write_text_content(BytesText::new(&cid))?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ad(id: i64) -> Ad {
        Ad {
            id,
            title: format!("Ad <{id}> & more"),
            broadcast: None,
            creative_path: Some(format!("ads/{id}/creative.mp4")),
            vast_tag_url: None,
            mime_type: "video/mp4".into(),
            size_bytes: 1234,
            width: 640,
            height: 360,
            duration_ms: 6_500,
            click_url: "https://example.com/landing?a=1&b=2".into(),
            skip_after_s: Some(5),
            companion_path: None,
            companion_mime: String::new(),
            companion_width: 0,
            companion_height: 0,
            weight: 1,
            starts_ms: None,
            ends_ms: None,
            created_ms: 0,
            retired_ms: None,
        }
    }

    fn tracking() -> Tracking {
        Tracking {
            impression: "http://h/ads/track?e=impression&s=1".into(),
            error: "http://h/ads/track?e=error&code=[ERRORCODE]".into(),
            ..Tracking::default()
        }
    }

    /// Validates `doc` against the IAB's VAST 4.2 XSD with `xmllint`.
    pub(crate) fn assert_valid_vast(doc: &str) {
        let dir = std::env::temp_dir().join(format!("relaycast-vast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.xml", rand::random::<u64>()));
        // Macros are the player's to fill; a filled one must be a URI.
        std::fs::write(&file, doc.replace("[ERRORCODE]", "405")).unwrap();
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vast/vast_4.2.xsd");
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--schema", schema])
            .arg(&file)
            .output()
            .expect("xmllint runs (Debian's libxml2-utils; ./scripts/test installs it)");
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "not valid VAST 4.2: {}\n{doc}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn pods_and_empty_responses_validate_against_the_vast_4_2_schema() {
        let (mut a, mut b, mut c) = (ad(1), ad(2), ad(3));
        (a.companion_mime, a.companion_width, a.companion_height) = ("image/png".into(), 300, 250);
        b.vast_tag_url = Some("https://ads.example/vast?x=1&y=2".into());
        c.skip_after_s = None;
        c.click_url.clear();
        let served: Vec<Served> = [&a, &b, &c]
            .into_iter()
            .map(|ad| Served {
                ad,
                media_url: format!("http://h/ads/creatives/{}", ad.id),
                companion_url: (ad.companion_width > 0)
                    .then(|| format!("http://h/ads/companions/{}", ad.id)),
                tracking: tracking(),
            })
            .collect();
        assert!(pod(7, "abc", &served).contains("<CompanionAds>"));
        assert_valid_vast(&pod(7, "abc", &served));
        assert_valid_vast(&pod(7, "abc", &served[..1]));
        assert_valid_vast(&empty());
    }

    #[test]
    fn timecodes_are_hh_mm_ss_mmm() {
        for (ms, code) in [
            (0, "00:00:00.000"),
            (6_500, "00:00:06.500"),
            (3_723_004, "01:02:03.004"),
            (-5, "00:00:00.000"),
        ] {
            assert_eq!(timecode(ms), code);
        }
    }

    #[test]
    fn a_pod_escapes_text_and_keeps_urls_and_macros_intact() {
        let (a, mut b) = (ad(1), ad(2));
        b.vast_tag_url = Some("https://ads.example/vast?x=1&y=2".into());
        let served = [
            Served {
                ad: &a,
                media_url: "http://h/ads/creatives/1".into(),
                companion_url: None,
                tracking: tracking(),
            },
            Served {
                ad: &b,
                media_url: String::new(),
                companion_url: None,
                tracking: tracking(),
            },
        ];
        let doc = pod(7, "abc", &served);
        assert!(
            doc.contains("<AdTitle>Ad &lt;1&gt; &amp; more</AdTitle>"),
            "{doc}"
        );
        assert!(doc.contains("<![CDATA[http://h/ads/track?e=error&code=[ERRORCODE]]]>"));
        assert!(doc.contains(r#"<Linear skipoffset="00:00:05.000">"#));
        assert!(doc.contains("<Wrapper followAdditionalWrappers=\"true\">"));
        assert!(doc.contains("<![CDATA[https://ads.example/vast?x=1&y=2]]>"));
        assert!(doc.contains(r#"sequence="2""#));
        assert!(empty().contains(r#"<VAST version="4.2" xmlns="http://www.iab.com/VAST"/>"#));
    }
}
