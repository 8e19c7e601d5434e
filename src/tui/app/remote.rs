//! The credentials screen of a typed `s3://` or `sftp://` repository, the screen that
//! shows an unknown SFTP host key for the user to accept, and what a failed connect
//! shows. The picker goes on with the repository's passphrase (if encrypted) and its
//! images once the store answers.

use super::input::edit;
use super::{App, Screen};
use crate::tui::model::RepoTarget;
use crate::tui::remote::{HostKey, RemoteForm, RemoteKind};
use crate::tui::services::ServiceError;
use crossterm::event::{KeyCode, KeyEvent};

/// What the user types to accept a host key (a bare Enter must not do it).
const ACCEPT: &str = "yes";

impl App {
    /// Enter on a typed location: a remote one gets the credentials screen (or a note
    /// saying what is wrong with it); true when it was one.
    pub(super) fn typed_remote(&mut self, text: &str) -> bool {
        match RemoteKind::of(text) {
            None => false,
            Some(Err(why)) => {
                self.set_note(Some(why));
                true
            }
            Some(Ok(kind)) => {
                let form = RemoteForm::new(text, kind, &self.services.remote_defaults());
                self.push(Screen::RemoteLogin(form));
                true
            }
        }
    }

    pub(super) fn on_remote_login(&mut self, k: &KeyEvent) {
        let Some(Screen::RemoteLogin(form)) = self.stack.last_mut() else {
            return;
        };
        let n = form.field_count();
        match k.code {
            KeyCode::Esc => {
                self.back();
                self.stop_opening();
            }
            KeyCode::Tab | KeyCode::Down => form.field = (form.field + 1) % n,
            KeyCode::BackTab | KeyCode::Up => form.field = (form.field + n - 1) % n,
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right if form.on_toggle() => {
                form.creds.path_style = !form.creds.path_style
            }
            KeyCode::Enter => {
                if let Some(why) = form.missing() {
                    form.note = Some(why);
                    return;
                }
                form.note = None;
                let target = RepoTarget::Remote {
                    location: form.location.clone(),
                    creds: form.creds.clone(),
                };
                self.choose_repo(target);
            }
            _ => {
                let c = &mut form.creds;
                match (form.kind, form.field) {
                    (RemoteKind::S3, 0) => edit(&mut c.endpoint, k),
                    (RemoteKind::S3, 1) => edit(&mut c.region, k),
                    (RemoteKind::S3, 2) => edit(&mut c.access_key, k),
                    (RemoteKind::S3, 3) => edit(&mut c.secret_key, k),
                    (RemoteKind::Sftp, 0) => edit(&mut c.key_file, k),
                    (RemoteKind::Sftp, _) => edit(&mut c.password, k),
                    _ => false,
                };
            }
        }
    }

    /// A remote store that did not open: its unknown host key to accept, or an error
    /// screen naming the location; Enter there goes back to the fields to fix them.
    pub(super) fn remote_failed(&mut self, target: RepoTarget, e: ServiceError) {
        let location = target.network_location().unwrap_or_default();
        match e {
            ServiceError::UnknownHostKey(key) => self.push(Screen::HostKey {
                key,
                target,
                input: String::new(),
                note: None,
            }),
            e => self.error(
                match e.to_string() {
                    t if t.contains(&location) => t,
                    t => format!("Could not open the repository at {location}: {t}"),
                },
                "Press Enter to go back, correct the endpoint, key, secret or password, and press Enter to try again.",
            ),
        }
    }

    pub(super) fn on_host_key(&mut self, k: &KeyEvent) {
        let Some(Screen::HostKey {
            key,
            target,
            input,
            note,
        }) = self.stack.last_mut()
        else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Enter if input.trim().eq_ignore_ascii_case(ACCEPT) => {
                let (key, target): (HostKey, RepoTarget) = (key.clone(), target.clone());
                match self.services.trust_host_key(&key) {
                    Ok(()) => {
                        self.back();
                        self.choose_repo(target);
                    }
                    Err(e) => {
                        *note = Some(format!("Could not add the key to known_hosts: {e}"));
                    }
                }
            }
            KeyCode::Enter => {
                *note = Some(format!(
                    "Type {ACCEPT} to trust this key, or Esc to go back."
                ))
            }
            _ => {
                if edit(input, k) {
                    *note = None;
                }
            }
        }
    }
}
