//! Handlers for the choosing screens: home, disk picker, repository picker and
//! image list. They only move between screens; nothing is written here.

use super::*;

impl App {
    pub(super) fn on_home(&mut self, sel: usize, k: &KeyEvent) -> Action {
        let n = HOME_ITEMS.len();
        let choice = match k.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.stack[0] = Screen::Home {
                    sel: (sel + n - 1) % n,
                };
                None
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                self.stack[0] = Screen::Home { sel: (sel + 1) % n };
                None
            }
            KeyCode::Enter => Some(sel),
            KeyCode::Char('q') => {
                self.push(Screen::Ask {
                    what: AskWhat::Quit,
                });
                None
            }
            KeyCode::Char(c) => HOME_ITEMS.iter().position(|(_, h)| *h == c),
            _ => None,
        };
        let Some(i) = choice else {
            return Action::None;
        };
        self.stack[0] = Screen::Home { sel: i };
        self.choices = Choices::default();
        self.report = None;
        self.verify_report = None;
        // By shortcut rather than position, so an item added to the menu moves nothing.
        match HOME_ITEMS.get(i).map_or('p', |h| h.1) {
            'b' => {
                self.flow = Flow::Backup;
                self.open_disks(DiskPurpose::BackupSource);
            }
            'r' => {
                self.flow = Flow::Restore;
                self.open_repos();
            }
            'c' => {
                self.flow = Flow::Clone;
                self.open_disks(DiskPurpose::CloneSource);
            }
            'v' => {
                self.flow = Flow::Verify;
                self.open_repos();
            }
            'i' => {
                self.flow = Flow::Browse;
                self.open_repos();
            }
            'd' => {
                self.flow = Flow::Deploy;
                self.open_repos();
            }
            'a' => {
                if let Some(why) = self.services.schedule_unavailable() {
                    self.error(why, "Press Enter to go back.");
                    return Action::None;
                }
                self.flow = Flow::Schedule;
                self.open_disks(DiskPurpose::ScheduleSource);
            }
            's' => return Action::Shell,
            _ => self.push(Screen::Ask {
                what: AskWhat::PowerOff,
            }),
        }
        Action::None
    }

    pub(super) fn open_disks(&mut self, purpose: DiskPurpose) {
        self.push(Screen::Disks {
            purpose,
            sel: 0,
            note: None,
        });
        self.refresh_disks();
    }

    pub(super) fn open_repos(&mut self) {
        match self.services.list_repo_candidates() {
            Ok(cands) => self.push(Screen::Repos {
                cands,
                sel: 0,
                path: None,
                note: None,
            }),
            Err(e) => self.error(
                format!("Could not list the partitions: {e}"),
                "Press Enter to go back, then try again. If a disk was just plugged in, wait a few seconds.",
            ),
        }
    }

    pub(super) fn set_note(&mut self, text: Option<String>) {
        match self.stack.last_mut() {
            Some(Screen::Disks { note, .. })
            | Some(Screen::PartTargets { note, .. })
            | Some(Screen::Repos { note, .. })
            | Some(Screen::ShareLogin { note, .. })
            | Some(Screen::Name { note, .. }) => *note = text,
            Some(Screen::ScheduleForm(form)) => form.note = text,
            Some(Screen::RemoteLogin(form)) => form.note = text,
            _ => {}
        }
    }

    pub(super) fn on_disks(&mut self, purpose: DiskPurpose, sel: usize, k: &KeyEvent) {
        let n = self.disks.len();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Char('r') => self.refresh_disks(),
            KeyCode::Up | KeyCode::Char('k') if sel > 0 => self.set_disk_sel(sel - 1),
            KeyCode::Down | KeyCode::Char('j') if sel + 1 < n => self.set_disk_sel(sel + 1),
            KeyCode::Enter => {
                let Some(disk) = self.disks.get(sel).cloned() else {
                    return;
                };
                match purpose {
                    DiskPurpose::BackupSource | DiskPurpose::ScheduleSource => {
                        if disk.boot_medium {
                            self.set_note(Some(format!(
                                "{} is the ironclone stick itself; pick the machine's disk.",
                                disk.dev
                            )));
                            return;
                        }
                        self.choices.source = Some(disk);
                        self.open_repos();
                    }
                    DiskPurpose::CloneSource => {
                        self.choices.source = Some(disk);
                        self.open_disks(DiskPurpose::CloneTarget);
                    }
                    DiskPurpose::RestoreTarget | DiskPurpose::CloneTarget => {
                        if let Some(why) = self.refuse_target(&disk) {
                            self.set_note(Some(why));
                            return;
                        }
                        // Disks without a serial (loop, many virtual disks) are told
                        // apart by their kernel name.
                        let same = self.choices.source.as_ref().is_some_and(|s| {
                            s.dev == disk.dev || (!s.serial.is_empty() && s.serial == disk.serial)
                        });
                        if purpose == DiskPurpose::CloneTarget && same {
                            self.set_note(Some("That is the source disk.".into()));
                            return;
                        }
                        self.choices.target = Some(disk);
                        self.choices.target_part = None;
                        self.choices.options = RestoreOptions::default();
                        self.replan();
                        self.push(Screen::Plan { sel: 0, size: None });
                    }
                }
            }
            _ => {}
        }
    }

    /// Why `disk` cannot be written to (the boot medium, mounted, read-only, or the
    /// repository's disk), as the picker's note says it.
    pub(super) fn refuse_target(&self, disk: &DiskView) -> Option<String> {
        if let Some(why) = disk.refuse_as_target() {
            return Some(format!("Cannot write there: {why}"));
        }
        let r = self.choices.repo_dev.as_ref()?;
        on_disk(r, &disk.dev).then(|| {
            format!(
                "Cannot write there: {} holds the repository ({r}).",
                disk.dev
            )
        })
    }

    pub(super) fn set_disk_sel(&mut self, v: usize) {
        if let Some(Screen::Disks { sel, note, .. }) = self.stack.last_mut() {
            *sel = v;
            *note = None;
        }
    }

    pub(super) fn on_repos(&mut self, k: &KeyEvent) {
        let Some(Screen::Repos {
            cands, sel, path, ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let n = cands.len() + 1;
        if k.code == KeyCode::Esc && self.opening.is_some() {
            // Esc stops the wait and keeps the typed text, so a typo can be fixed.
            self.stop_opening();
            return;
        }
        if let Some(p) = path {
            match k.code {
                KeyCode::Esc => *path = None,
                KeyCode::Enter => {
                    let (target, text) = (p.target(), p.text().to_string());
                    if !self.typed_remote(&text) {
                        self.choose_repo(target);
                    }
                }
                _ => {
                    edit(p, k);
                }
            }
            return;
        }
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => *sel = sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *sel = (*sel + 1).min(n - 1),
            KeyCode::Char('/') => *path = Some(PathField::default()),
            KeyCode::Enter => {
                if let Some(c) = cands.get(*sel) {
                    let target = RepoTarget::Partition(c.dev.clone());
                    self.choose_repo(target);
                } else {
                    *path = Some(PathField::default());
                }
            }
            _ => {}
        }
    }

    pub(super) fn choose_repo(&mut self, target: RepoTarget) {
        // A new pick: a new repository's question is asked again.
        self.choices.new_repo = None;
        if let (RepoTarget::Partition(dev), Some(src), Flow::Backup | Flow::Schedule) =
            (&target, &self.choices.source, self.flow)
        {
            if on_disk(dev, &src.dev) {
                self.set_note(Some(format!(
                    "{dev} is on the disk being backed up; store the image on another disk."
                )));
                return;
            }
        }
        // Opened off the UI thread, whatever it is: a share or a remote store waits for
        // DHCP and the server, a partition is mounted (a slow USB disk, a journal to
        // replay), and what the picker asks of a repository reads its image list.
        if self.opening.is_none() {
            let note = match target.network_location() {
                Some(location) => {
                    format!(
                        "Connecting to {location}... (up to a minute while the network comes up)"
                    )
                }
                None => format!("Opening {}...", target.label()),
            };
            self.set_note(Some(note));
            self.opening = Some(Opening {
                depth: self.stack.len(),
                target: target.clone(),
            });
            self.ask_off_thread(move |services| {
                let result = services.open_repo(&target).map(|repo| {
                    let facts = services.repo_facts(&repo);
                    (repo, facts)
                });
                Msg::RepoOpened { target, result }
            });
        }
    }

    /// Esc while a repository is being opened: its result, when it comes, is dropped
    /// (the mount itself cannot be interrupted), and the "Connecting to" note goes.
    pub(super) fn stop_opening(&mut self) {
        if let Some(o) = self.opening.take() {
            self.set_note(Some(format!("Stopped waiting for {}.", o.target.label())));
        }
    }

    /// What the picker asks of `repo`: the opening thread's answers when it gathered
    /// them for this repository (a network location), else asked now (a local one,
    /// or after an unlock or the new-repository question changed the answers).
    fn take_facts(&mut self, repo: &std::path::Path) -> RepoFacts {
        match self.facts.take() {
            Some((r, f)) if r == repo => f,
            _ => self.services.repo_facts(repo),
        }
    }

    /// The rest of choosing a repository, once it is open (or failed to open).
    pub(super) fn repo_opened(
        &mut self,
        target: RepoTarget,
        result: Result<PathBuf, ServiceError>,
    ) {
        let repo = match result {
            Ok(r) => r,
            Err(e) if matches!(target, RepoTarget::Remote { .. }) => {
                self.remote_failed(target, e);
                return;
            }
            Err(e) => {
                self.ask_share_login(&target, e.to_string());
                return;
            }
        };
        if matches!(
            self.screen(),
            Screen::ShareLogin { .. } | Screen::RemoteLogin(_)
        ) {
            // Logged in: Esc from here on goes back to the repository picker.
            self.stack.pop();
        }
        let facts = self.take_facts(&repo);
        if self.flow == Flow::Schedule {
            self.schedule_repo_opened(&target, &repo, facts.locked);
            return;
        }
        if facts.locked {
            self.ask_repo_passphrase(&target, &repo);
            return;
        }
        if self.flow == Flow::Backup && facts.new && self.ask_new_repo(&target, &repo) {
            // Still true once answered: kept for the `repo_opened` that follows.
            self.facts = Some((repo, facts));
            return;
        }
        let listed = facts
            .images
            .unwrap_or_else(|| self.services.list_images(&repo));
        let images = match listed {
            Ok(i) => i,
            Err(e) => {
                self.error(
                    format!("Could not read the repository at {}: {e}", repo.display()),
                    "Press Enter to go back and pick another partition or path.",
                );
                return;
            }
        };
        self.choices.repo = Some(repo);
        self.choices.repo_dev = match &target {
            RepoTarget::Partition(dev) => Some(dev.clone()),
            RepoTarget::Path(_) | RepoTarget::Share { .. } | RepoTarget::Remote { .. } => None,
        };
        self.choices.images = images;
        if self.flow == Flow::Backup {
            let base = self
                .choices
                .source
                .as_ref()
                .map(|d| slug(&d.model))
                .filter(|s| !s.is_empty())
                .or_else(|| self.services.hostname().map(|h| slug(&h)))
                .unwrap_or_else(|| "disk".into());
            let input = format!("{base}-{}", self.services.today());
            self.push(Screen::Name { input, note: None });
        } else if self.choices.images.is_empty() {
            self.set_note(Some(
                "No images in that repository. Pick another one.".into(),
            ));
        } else {
            self.push(Screen::Images { sel: 0 });
        }
    }

    pub(super) fn on_images(&mut self, sel: usize, k: &KeyEvent) {
        let n = self.choices.images.len();
        match k.code {
            KeyCode::Esc => self.back(),
            KeyCode::Up | KeyCode::Char('k') => {
                self.stack.pop();
                self.push(Screen::Images {
                    sel: sel.saturating_sub(1),
                });
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.stack.pop();
                self.push(Screen::Images {
                    sel: (sel + 1).min(n.saturating_sub(1)),
                });
            }
            KeyCode::Enter => {
                let Some(img) = self.choices.images.get(sel).cloned() else {
                    return;
                };
                if img.clonezilla && self.flow == Flow::Deploy {
                    // A Clonezilla image restores and verifies like an ironclone one;
                    // deploying serves a repository, which its folder is not.
                    let dir = self.choices.repo.clone().unwrap_or_default();
                    self.error(
                        format!("{} is a Clonezilla image; it can be restored and verified here, not deployed.", img.name),
                        format!("To deploy it, import it into a repository in the Shell: ironclone import {} {} REPO.", dir.display(), img.name),
                    );
                    return;
                }
                self.choices.image = Some(img.clone());
                self.choices.luks_key = None;
                if img.needs_luks_key && matches!(self.flow, Flow::Restore | Flow::Browse) {
                    // Asked and checked against the image's header before the plan.
                    self.push(Screen::LuksKey {
                        password: Default::default(),
                        note: None,
                    });
                    return;
                }
                self.image_chosen(img);
            }
            _ => {}
        }
    }

    /// Goes on once the image is picked (and its LUKS passphrase checked, if needed).
    pub(super) fn image_chosen(&mut self, img: ImageView) {
        if (img.partition.is_some() || img.table_less)
            && matches!(self.flow, Flow::Restore | Flow::Browse)
        {
            // One partition of a saveparts image, or a native image without a table
            // (a partition backed up alone): onto a partition, not a disk.
            self.flow = Flow::Restore;
            self.open_part_targets();
            return;
        }
        match self.flow {
            Flow::Restore => self.open_disks(DiskPurpose::RestoreTarget),
            Flow::Browse => {
                self.flow = Flow::Restore;
                self.open_disks(DiskPurpose::RestoreTarget);
            }
            Flow::Verify => {
                let req = VerifyRequest {
                    repo: self.choices.repo.clone().unwrap_or_default(),
                    image: img.name,
                };
                let h = self.services.start_verify(req, self.progress_sink());
                self.begin_job(Flow::Verify, "Verifying an image", h);
            }
            Flow::Deploy => self.open_deploy_form(),
            Flow::Backup | Flow::Clone | Flow::Schedule => {}
        }
    }
}
