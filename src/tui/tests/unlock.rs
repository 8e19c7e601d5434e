//! An encrypted repository picked in the TUI: its passphrase is asked (stars), a wrong
//! one is said so and the field emptied, the right one lists its images.

use super::*;
use crate::progress::Progress;
use crate::share::Password;
use crate::tui::model::*;
use crate::tui::services::{JobHandle, ServiceError, Services};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The demo machine with one encrypted repository at /mnt/vault ("open sesame").
struct Vault {
    fake: FakeServices,
    open: Mutex<bool>,
}

const VAULT: &str = "/mnt/vault";

impl Services for Vault {
    fn list_disks(&self) -> Result<Vec<DiskView>, ServiceError> {
        self.fake.list_disks()
    }
    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, ServiceError> {
        self.fake.list_repo_candidates()
    }
    fn open_repo(&self, target: &RepoTarget) -> Result<PathBuf, ServiceError> {
        self.fake.open_repo(target)
    }
    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, ServiceError> {
        assert!(!self.repo_locked(repo), "images listed before the unlock");
        match repo == Path::new(VAULT) {
            true => Ok(self.fake.images.clone()),
            false => self.fake.list_images(repo),
        }
    }
    fn repo_locked(&self, repo: &Path) -> bool {
        repo == Path::new(VAULT) && !*self.open.lock().unwrap()
    }
    fn unlock_repo(&self, repo: &Path, p: &Password) -> Result<(), ServiceError> {
        if *p != Password::new("open sesame") {
            return Err(ServiceError::Plain(format!(
                "wrong passphrase for repository {}: no key slot opens with it (1 tried)",
                repo.display()
            )));
        }
        *self.open.lock().unwrap() = true;
        Ok(())
    }
    fn plan_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.fake.plan_restore(repo, image, target, options)
    }
    fn plan_clone(
        &self,
        source: &DiskView,
        target: &DiskView,
        options: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.fake.plan_clone(source, target, options)
    }
    fn start_backup(&self, req: BackupRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.fake.start_backup(req, p)
    }
    fn start_restore(&self, req: RestoreRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.fake.start_restore(req, p)
    }
    fn start_verify(&self, req: VerifyRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.fake.start_verify(req, p)
    }
    fn start_clone(&self, req: CloneRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.fake.start_clone(req, p)
    }
    fn hostname(&self) -> Option<String> {
        self.fake.hostname()
    }
    fn today(&self) -> String {
        self.fake.today()
    }
    fn power_off(&self) -> Result<(), ServiceError> {
        self.fake.power_off()
    }
}

#[test]
fn snap_repo_unlock() {
    let mut app = App::new(Arc::new(Vault {
        fake: FakeServices::default(),
        open: Mutex::new(false),
    }));
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str("/mnt/vault");
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::RepoUnlock { .. }));
    app.type_str("guess");
    let shown = render(&app);
    assert!(
        shown.contains("*****_") && !shown.contains("guess"),
        "{shown}"
    );
    enter(&mut app);
    snap("repo_unlock_wrong", &app);
    assert!(
        !render(&app).contains("*****"),
        "a wrong passphrase empties the field"
    );
    app.type_str("open sesame");
    enter(&mut app);
    assert!(
        matches!(app.screen(), Screen::Images { .. }),
        "{:?}",
        app.screen()
    );
    // Back from the images goes to the picker, not to the passphrase.
    app.press(KeyCode::Esc);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
}
