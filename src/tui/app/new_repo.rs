//! A backup into a location that holds no repository makes one, and a repository is
//! encrypted or not from the day it is made (docs/FORMAT.md: the key slots and the
//! keyed chunk ids are in its config). So the backup flow asks here, once, before the
//! image is named: encrypt with a passphrase typed twice (stars; it never reaches the
//! screen, a log or a file), or not. Encrypting is the first row: an image of a whole
//! machine holds every secret on it, and the new repository is often on a share or in
//! object storage. An existing repository is never asked about (its config decides).

use super::input::edit;
use super::{App, Screen};
use crate::share::Password;
use crate::tui::model::RepoTarget;
use crossterm::event::{KeyCode, KeyEvent};
use std::path::{Path, PathBuf};

impl App {
    /// Asks how to make the repository at `repo`, a location with none yet
    /// (`RepoFacts::new`), unless this pick has answered; true then.
    pub(super) fn ask_new_repo(&mut self, target: &RepoTarget, repo: &Path) -> bool {
        let answered = matches!(&self.choices.new_repo, Some((r, _)) if r == repo);
        if answered {
            return false;
        }
        self.push(Screen::NewRepo {
            target: target.clone(),
            repo: repo.to_path_buf(),
            sel: 0,
        });
        true
    }

    pub(super) fn on_new_repo(&mut self, k: &KeyEvent) {
        let Some(Screen::NewRepo { target, repo, sel }) = self.stack.last_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Down | KeyCode::Tab => *sel = 1 - (*sel).min(1),
            KeyCode::Enter => {
                let (target, repo, encrypt) = (target.clone(), repo.clone(), *sel == 0);
                if encrypt {
                    self.push(Screen::NewPassphrase {
                        target,
                        repo,
                        first: Password::default(),
                        again: Password::default(),
                        on_again: false,
                        note: None,
                    });
                } else {
                    self.stack.pop();
                    self.new_repo_chosen(target, repo, None);
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_new_passphrase(&mut self, k: &KeyEvent) {
        let Some(Screen::NewPassphrase {
            target,
            repo,
            first,
            again,
            on_again,
            note,
        }) = self.stack.last_mut()
        else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => *on_again = !*on_again,
            KeyCode::Enter if first.char_count() == 0 => {
                *on_again = false;
                *note = Some("Type a passphrase, or press Esc and choose not to encrypt.".into());
            }
            KeyCode::Enter if !*on_again => {
                *on_again = true;
                *note = None;
            }
            KeyCode::Enter if first != again => {
                // Both emptied: which one was mistyped cannot be known.
                *first = Password::default();
                *again = Password::default();
                *on_again = false;
                *note = Some("The two passphrases differ. Type it again, twice.".into());
            }
            KeyCode::Enter => {
                let pass = std::mem::take(first);
                let (target, repo) = (target.clone(), repo.clone());
                // This screen and the question under it.
                self.stack.pop();
                self.stack.pop();
                self.new_repo_chosen(target, repo, Some(pass));
            }
            _ => {
                let field = if *on_again { again } else { first };
                if edit(field, k) {
                    *note = None;
                }
            }
        }
    }

    fn new_repo_chosen(&mut self, target: RepoTarget, repo: PathBuf, pass: Option<Password>) {
        self.choices.new_repo = Some((repo.clone(), pass));
        self.repo_opened(target, Ok(repo));
    }
}
