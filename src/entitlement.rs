//! `relaycast entitlement grant|revoke`: an account's ad-free plan, in the
//! database the server uses (same `--config`, `--data-dir` and
//! `--database-url`), for operators and for scripts a payment system runs
//! (the HTTP seam is `POST /api/entitlements`).

use anyhow::{bail, Context};

use crate::config::Config;

/// The one plan today.
const AD_FREE: &str = "ad-free";

#[derive(clap::Args, Debug, Clone)]
pub struct GrantArgs {
    /// The account's username.
    #[arg(long)]
    pub user: String,
    /// The plan (today only `ad-free`).
    #[arg(long, default_value = AD_FREE)]
    pub plan: String,
    /// For how many days from now (1-3660).
    #[arg(long)]
    pub days: u32,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RevokeArgs {
    #[arg(long)]
    pub user: String,
    #[arg(long, default_value = AD_FREE)]
    pub plan: String,
}

fn check_plan(plan: &str) -> anyhow::Result<()> {
    if plan != AD_FREE {
        bail!("unknown plan {plan:?}: the one plan is {AD_FREE:?}");
    }
    Ok(())
}

async fn account(store: &relaycast_signaling::Store, user: &str) -> anyhow::Result<String> {
    store
        .account_identity(user)
        .await
        .context("looking up the account")?
        .with_context(|| format!("no account named {user:?}"))
}

pub async fn grant(config: &Config, args: &GrantArgs) -> anyhow::Result<()> {
    check_plan(&args.plan)?;
    if !(1..=3660).contains(&args.days) {
        bail!("--days must be 1-3660 (revoke with `relaycast entitlement revoke`)");
    }
    let store = crate::open_store(config).await?;
    let id = account(&store, &args.user).await?;
    let until = relaycast_signaling::store::now_ms() + i64::from(args.days) * 86_400_000;
    store
        .grant_entitlement(&id, &args.plan, until, "cli")
        .await
        .context("granting the plan")?;
    store.close().await;
    println!(
        "{} ({id}) holds {} for {} days (until {until} ms since the epoch)",
        args.user, args.plan, args.days
    );
    Ok(())
}

pub async fn revoke(config: &Config, args: &RevokeArgs) -> anyhow::Result<()> {
    check_plan(&args.plan)?;
    let store = crate::open_store(config).await?;
    let id = account(&store, &args.user).await?;
    let had = store
        .revoke_entitlement(&id, &args.plan)
        .await
        .context("revoking the plan")?;
    store.close().await;
    if had {
        println!("{} ({id}) no longer holds {}", args.user, args.plan);
    } else {
        println!("{} ({id}) did not hold {}", args.user, args.plan);
    }
    Ok(())
}
