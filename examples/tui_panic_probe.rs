//! Test helper for `tests/tui_tmux.rs`: runs the TUI over services that panic when the
//! disks are listed, to prove the panic hook gives the terminal back to the shell.

use ironclone::progress::Progress;
use ironclone::tui::demo::FakeServices;
use ironclone::tui::model::*;
use ironclone::tui::{JobHandle, ServiceError, Services};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Panicky(FakeServices);

impl Services for Panicky {
    fn list_disks(&self) -> Result<Vec<DiskView>, ServiceError> {
        panic!("probe: deliberate panic inside the TUI");
    }
    fn list_repo_candidates(&self) -> Result<Vec<RepoCandidate>, ServiceError> {
        self.0.list_repo_candidates()
    }
    fn open_repo(&self, t: &RepoTarget) -> Result<PathBuf, ServiceError> {
        self.0.open_repo(t)
    }
    fn list_images(&self, repo: &Path) -> Result<Vec<ImageView>, ServiceError> {
        self.0.list_images(repo)
    }
    fn plan_restore(
        &self,
        repo: &Path,
        image: &str,
        target: &DiskView,
        o: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.0.plan_restore(repo, image, target, o)
    }
    fn plan_clone(
        &self,
        s: &DiskView,
        t: &DiskView,
        o: &RestoreOptions,
    ) -> Result<PlanView, ServiceError> {
        self.0.plan_clone(s, t, o)
    }
    fn start_backup(&self, r: BackupRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.0.start_backup(r, p)
    }
    fn start_restore(&self, r: RestoreRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.0.start_restore(r, p)
    }
    fn start_verify(&self, r: VerifyRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.0.start_verify(r, p)
    }
    fn start_clone(&self, r: CloneRequest, p: Arc<dyn Progress>) -> JobHandle {
        self.0.start_clone(r, p)
    }
    fn hostname(&self) -> Option<String> {
        None
    }
    fn today(&self) -> String {
        self.0.today()
    }
    fn power_off(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

fn main() {
    let _ = ironclone::tui::run(Arc::new(Panicky(FakeServices::default())));
}
