//! An encrypted repository picked in the TUI: its passphrase is asked (stars) and
//! checked off the screen's thread, a wrong one is said so and the field emptied, the
//! right one lists its images; Esc during the check drops its answer.

use super::*;
use crate::progress::Progress;
use crate::share::Password;
use crate::tui::model::*;
use crate::tui::services::{JobHandle, ServiceError, Services};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::ThreadId;

/// The demo machine with one encrypted repository at /mnt/vault ("open sesame").
#[derive(Default)]
struct Vault {
    fake: FakeServices,
    open: Mutex<bool>,
    /// The threads the passphrase was checked on.
    checked_on: Mutex<Vec<ThreadId>>,
    /// When set, a check waits for a message on it before answering.
    hold: Mutex<Option<Receiver<()>>>,
}

impl Vault {
    /// A vault whose checks wait for the returned sender.
    fn held() -> (Vault, Sender<()>) {
        let (tx, rx) = channel();
        let v = Vault::default();
        *v.hold.lock().unwrap() = Some(rx);
        (v, tx)
    }
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
        self.checked_on
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if let Some(rx) = self.hold.lock().unwrap().as_ref() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
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
    let vault = Arc::new(Vault::default());
    let mut app = App::new(vault.clone());
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str("/mnt/vault");
    pick_repo(&mut app);
    assert!(matches!(app.screen(), Screen::RepoUnlock { .. }));
    app.type_str("guess");
    let shown = render(&app);
    assert!(
        shown.contains("*****_") && !shown.contains("guess"),
        "{shown}"
    );
    enter(&mut app);
    app.settle(Duration::from_secs(10));
    snap("repo_unlock_wrong", &app);
    assert!(
        !render(&app).contains("*****"),
        "a wrong passphrase empties the field"
    );
    app.type_str("open sesame");
    enter(&mut app);
    app.settle(Duration::from_secs(10));
    let on = vault.checked_on.lock().unwrap().clone();
    assert_eq!(on.len(), 2, "each Enter is one check");
    assert!(
        !on.contains(&std::thread::current().id()),
        "a passphrase was checked on the screen's thread"
    );
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

#[test]
fn esc_during_the_check_drops_its_answer() {
    let (vault, release) = Vault::held();
    let mut app = App::new(Arc::new(vault));
    app.press(KeyCode::Char('i'));
    app.press(KeyCode::Char('/'));
    app.type_str("/mnt/vault");
    pick_repo(&mut app);
    app.type_str("open sesame");
    enter(&mut app);
    // The screen still answers while the check runs: it says so and ignores typing.
    let shown = render(&app);
    assert!(shown.contains("Checking the passphrase"), "{shown}");
    app.type_str("xyz");
    assert!(
        !render(&app).contains("***"),
        "typed into a field being checked"
    );
    app.press(KeyCode::Esc);
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
    release.send(()).unwrap();
    // The answer (right passphrase) arrives and is dropped: still on the picker.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while let Ok(m) = app.receiver().recv_timeout(end - std::time::Instant::now()) {
        let unlocked = matches!(m, Msg::RepoUnlocked { .. });
        app.update(m);
        if unlocked {
            break;
        }
    }
    assert!(
        matches!(app.screen(), Screen::Repos { .. }),
        "{:?}",
        app.screen()
    );
}
