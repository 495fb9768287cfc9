//! `yizhan key rotate`: move every sealed value, blind index and access-log
//! seal to a new vault key. Stop every server first; start them again with
//! the new key afterwards.

use crate::app::{build_with_key, explain, open_db};
use crate::DataOpts;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use yizhan_core::vault::{promote_next_key, write_next_key, write_private};
use yizhan_core::{Clock, SystemClock, Vault};

pub async fn rotate(data: &DataOpts, new_key_out: Option<&Path>) -> anyhow::Result<()> {
    let db = open_db(data).await?;
    let operator_hex = std::env::var("YIZHAN_SECRET_KEY").ok().filter(|h| !h.trim().is_empty());
    if operator_hex.is_some() && new_key_out.is_none() {
        anyhow::bail!(
            "the key comes from YIZHAN_SECRET_KEY: give --new-key-out FILE for the new key \
             (written there, mode 0600), then put it in YIZHAN_SECRET_KEY and the old one in \
             YIZHAN_PREVIOUS_SECRET_KEY for as long as printed QR codes must still check"
        );
    }
    let old = Vault::load_for(&data.data_dir, operator_hex.as_deref(), &db).await.map_err(explain)?;
    let now = SystemClock.now_ms();
    old.check_against(&db, now).await.map_err(explain).context("the key given is not this database's")?;
    let new = match std::env::var("YIZHAN_NEW_SECRET_KEY").ok().filter(|h| !h.trim().is_empty()) {
        Some(h) => Vault::from_hex(&h).map_err(explain).context("YIZHAN_NEW_SECRET_KEY")?,
        None => Vault::generate(),
    };
    if new.fingerprint() == old.fingerprint() {
        anyhow::bail!("the new key is the key in use");
    }
    // The new key is on disk before the database commits to it: a crash
    // after the commit cannot leave data under a key nobody has.
    match new_key_out {
        Some(path) => write_private(path, &new.to_hex())
            .map_err(explain)
            .with_context(|| format!("writing the new key to {} (it must not exist yet)", path.display()))?,
        None => write_next_key(&data.data_dir, &new).map_err(explain).context("writing secret.key.next")?,
    }
    let total = yizhan_app::keys::rotation_size(&db).await.map_err(explain)?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("rotating {bar:30} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = yizhan_app::keys::rotate(&db, &old, &new, now, &|n| bar.inc(n)).await;
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // Nothing committed: the old key stays the key.
            match new_key_out {
                Some(path) => {
                    let _ = std::fs::remove_file(path);
                }
                None => {
                    let _ = std::fs::remove_file(data.data_dir.join(yizhan_core::vault::NEXT_KEY_FILE));
                }
            }
            return Err(explain(e)).context("rotation refused; nothing changed");
        }
    };
    if new_key_out.is_none() {
        promote_next_key(&data.data_dir).map_err(explain).context("moving secret.key.next to secret.key")?;
    }
    // Tell the people whose payment PIN could not move, with the new key's services.
    if !report.wallet.pins_dropped.is_empty() {
        let key = new_key_out.map(|_| new.to_hex());
        let built = build_with_key(data, false, key).await;
        match built {
            Ok(b) => yizhan_app::keys::after_rotation(&b.state.pay, &report).await,
            Err(e) => eprintln!("could not tell the people whose payment PIN was dropped: {e:#}"),
        }
    }
    println!("key rotated: {} -> {}", &old.fingerprint()[..16], &new.fingerprint()[..16]);
    println!(
        "  identity numbers re-sealed: {}; second-factor secrets re-sealed: {}; access logs re-sealed: {} ({} entries)",
        report.identity.id_numbers,
        report.identity.totp_secrets,
        report.access_logs.subjects,
        report.access_logs.entries
    );
    println!(
        "  dropped (keyed hashes that cannot move): {} log-in counters, {} known addresses, {} unused pay codes, \
         {} payment PINs (their owners are told to set them again)",
        report.identity.login_limits_dropped,
        report.identity.known_addresses_dropped,
        report.wallet.paycodes_dropped,
        report.wallet.pins_dropped.len()
    );
    match new_key_out {
        Some(path) => println!(
            "  the new key is in {}: set YIZHAN_SECRET_KEY to it on every server, keep the old one in \
             YIZHAN_PREVIOUS_SECRET_KEY while printed QR codes must still check, then start the servers",
            path.display()
        ),
        None => println!(
            "  {} is the new key and {} the old one (kept so printed QR codes still check; delete it \
             once they are reprinted, or now if the old key leaked); back up the new key, then start the servers",
            data.data_dir.join(yizhan_core::vault::KEY_FILE).display(),
            data.data_dir.join(yizhan_core::vault::PREVIOUS_KEY_FILE).display()
        ),
    }
    Ok(())
}
