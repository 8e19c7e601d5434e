//! `App::draw`: which screen renders the state. Drawing has no side effects (see the
//! module doc of `app`).

use super::{App, Flow, Screen};
use crate::tui::screens;
use ratatui::Frame;

impl App {
    pub fn draw(&self, f: &mut Frame) {
        match self.screen() {
            Screen::Home { sel } => screens::home::draw(self, *sel, f),
            Screen::Disks { purpose, sel, note } => {
                screens::disks::draw(self, *purpose, *sel, note.as_deref(), f)
            }
            Screen::PartTargets { sel, note } => {
                screens::part_targets::draw(self, *sel, note.as_deref(), f)
            }
            Screen::Repos {
                cands,
                sel,
                path,
                note,
            } => screens::repos::draw(self, cands, *sel, path.as_ref(), note.as_deref(), f),
            Screen::ShareLogin {
                location,
                user,
                password,
                on_password,
                note,
            } => screens::share_login::draw(
                location,
                user,
                password.char_count(),
                *on_password,
                note.as_deref(),
                f,
            ),
            Screen::RepoUnlock {
                repo,
                password,
                note,
                ..
            } => screens::repo_unlock::draw(repo, password.char_count(), note.as_deref(), f),
            Screen::NewRepo { repo, sel, .. } => screens::new_repo::choice(repo, *sel, f),
            Screen::NewPassphrase {
                repo,
                first,
                again,
                on_again,
                note,
                ..
            } => screens::new_repo::passphrase(
                repo,
                [first.char_count(), again.char_count()],
                *on_again,
                note.as_deref(),
                f,
            ),
            Screen::LuksKey { password, note } => screens::luks_key::draw(
                self.choices.image.as_ref(),
                password.char_count(),
                note.as_deref(),
                f,
            ),
            Screen::RemoteLogin(form) => screens::remote_login::draw(form, f),
            Screen::HostKey {
                key, input, note, ..
            } => screens::host_key::draw(key, input, note.as_deref(), f),
            Screen::Images { sel } => screens::images::draw(self, *sel, f),
            Screen::Name { input, note } => screens::name::draw(self, input, note.as_deref(), f),
            Screen::Summary => screens::summary::draw(self, f),
            Screen::Plan { sel, size } => screens::plan::draw(self, *sel, size.as_deref(), f),
            Screen::Confirm { input, refused } => screens::confirm::draw(self, input, *refused, f),
            Screen::Progress => screens::progress::draw(self, f),
            Screen::Done => screens::done::draw(self, f),
            Screen::Error { what, next } => screens::error::draw(what, next, f),
            Screen::Ask { what } => screens::ask::draw(*what, f),
            Screen::ScheduleForm(form) => screens::schedule::form(self, form, f),
            Screen::ScheduleSummary { req, next_run } => {
                screens::schedule::summary(req, next_run.as_deref(), f)
            }
            Screen::ScheduleDone { lines } => screens::schedule::done(lines, f),
            Screen::DeployForm(form) => screens::deploy::form(self, form, f),
            Screen::DeploySummary(req) => screens::deploy::summary(req, f),
            Screen::DeployLive(live) => screens::deploy::live(live, f),
            Screen::DeployDone(res) => screens::deploy::done(res, f),
        }
        if self.cancel_ask {
            let flow = if self.deploy_running() {
                Flow::Deploy
            } else {
                self.job.kind.unwrap_or(self.flow)
            };
            screens::cancel::draw(flow, f);
        }
    }
}
