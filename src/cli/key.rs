//! `ironclone key add|list|remove REPO`: the passphrases (key slots) of an encrypted
//! repository. Each slot wraps the same master key, so none of this rewrites data.

use super::repo_open::{self, Secret};
use clap::{Args as ClapArgs, Subcommand};
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand)]
pub enum Action {
    /// Add a passphrase; an existing one unlocks the repository first.
    Add {
        repo: PathBuf,
        #[command(flatten)]
        secret: Secret,
        /// File holding the NEW passphrase (else $IRONCLONE_NEW_PASSWORD, else a prompt).
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// A note shown by `key list` (whose key it is).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List the key slots (never their secrets).
    List {
        repo: PathBuf,
        #[command(flatten)]
        secret: Secret,
        #[arg(long)]
        json: bool,
    },
    /// Remove a key slot by its id (`key list`); never the last one.
    Remove {
        repo: PathBuf,
        slot: String,
        #[command(flatten)]
        secret: Secret,
        /// Also remove the slot the given passphrase opens.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Add {
            repo,
            secret,
            new_password_file,
            label,
        } => {
            let r = repo_open::open(&repo, &secret)?;
            let new = Secret {
                password_file: new_password_file,
            }
            .get("IRONCLONE_NEW_PASSWORD", &repo, "New passphrase", true)?;
            let id = r.add_key(new.as_bytes(), &label)?;
            println!("added key slot {id}");
        }
        Action::List { repo, secret, json } => {
            let r = repo_open::open(&repo, &secret)?;
            let slots = r.list_keys()?;
            if json {
                println!("{}", serde_json::to_string(&slots)?);
            } else {
                for s in slots {
                    println!(
                        "{}{} {:24} {:16} {} {}",
                        s.id,
                        if s.current { "*" } else { " " },
                        s.label,
                        s.host,
                        ironclone::timefmt::utc_human(s.created_unix),
                        s.kdf
                    );
                }
            }
        }
        Action::Remove {
            repo,
            slot,
            secret,
            force,
        } => {
            let r = repo_open::open(&repo, &secret)?;
            r.remove_key(&slot, force)?;
            println!("removed key slot {slot}");
        }
    }
    Ok(())
}
