//! The "Deploy to many machines" flow against the demo's classroom, and the deploy
//! client's console screen.

use super::*;
use crate::deploy::client::ClientState;
use crate::deploy::protocol::DiskInfo;
use crate::tui::app::{deploy_result_of, DEPLOY_BOOT_ROW};
use crate::tui::client_screen::{apply_progress, apply_state};
use crate::tui::deploy_model::{ClientStateView, ClientView, DeployEvent, TargetChoice};

/// Home -> Deploy -> repository sdd1 -> the first image: the form.
fn to_deploy_form(app: &mut App) {
    app.press(KeyCode::Char('d'));
    pick_repo(app); // /dev/sdd1
    enter(app); // the first image
    assert!(
        matches!(app.screen(), Screen::DeployForm(_)),
        "{:?}",
        app.screen()
    );
}

/// Messages the job queued, applied one at a time (the demo plays its whole script
/// at once in tests).
fn next_msg(app: &mut App) -> bool {
    match app.receiver().try_recv() {
        Ok(m) => {
            app.update(m);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn deploy_form_names_the_wrong_field() {
    let (mut app, _) = app();
    to_deploy_form(&mut app);
    snap("deploy_form", &app);
    enter(&mut app);
    let text = render(&app);
    assert!(
        text.contains("Clients: \"\" is not a number of machines"),
        "{text}"
    );
    app.type_str("3");
    down(&mut app, 3); // Target
    backspace(&mut app, 4);
    app.type_str("sda");
    enter(&mut app);
    let text = render(&app);
    assert!(
        text.contains("Target: \"sda\" is not auto, largest or a /dev/ path."),
        "{text}"
    );
    snap("deploy_form_bad_target", &app);
}

#[test]
fn deploy_refuses_network_boot_on_an_interface_without_an_address() {
    let (mut app, _) = app();
    to_deploy_form(&mut app);
    app.type_str("3");
    down(&mut app, DEPLOY_BOOT_ROW);
    app.press(KeyCode::Left); // wraps to the last: wlp2s0, no address
    enter(&mut app);
    let text = render(&app);
    assert!(text.contains("wlp2s0 has no IPv4 address"), "{text}");
    assert!(matches!(app.screen(), Screen::DeployForm(_)));
}

#[test]
fn deploy_runs_to_the_senders_table() {
    let (mut app, fake) = app();
    to_deploy_form(&mut app);
    app.type_str("3");
    down(&mut app, 1);
    app.type_str("20");
    down(&mut app, 3); // Target stays auto; to the network boot row
    app.press(KeyCode::Right); // enp3s0
    enter(&mut app);
    snap("deploy_summary", &app);
    let Screen::DeploySummary(req) = app.screen().clone() else {
        panic!("{:?}", app.screen());
    };
    assert_eq!(req.clients, 3);
    assert_eq!((req.min_wait, req.max_wait), (Some(20), Some(600)));
    assert_eq!(req.target, TargetChoice::Auto);
    assert_eq!(
        req.serve_boot.as_ref().map(|i| i.name.as_str()),
        Some("enp3s0")
    );
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::DeployLive(_)));
    // Waiting, two joined, sending.
    for _ in 0..3 {
        assert!(next_msg(&mut app));
    }
    let text = render(&app);
    assert!(
        text.contains("sending (one multicast stream for all)"),
        "{text}"
    );
    assert!(text.contains("S6PNNX0R4"), "{text}");
    snap("deploy_live", &app);
    while next_msg(&mut app) {}
    let res = deploy_result_of(&app).expect("the table").clone();
    assert!(!res.all_ok);
    assert_eq!(res.rows.len(), 3);
    let text = render(&app);
    assert!(text.contains("2 of 3 client(s) ok"), "{text}");
    assert!(text.contains("finish it with `ironclone restore"), "{text}");
    snap("deploy_done", &app);
    assert!(fake
        .recorded()
        .iter()
        .any(|r| matches!(r, Recorded::Deploy(d) if *d == req)));
    enter(&mut app);
    assert!(matches!(app.screen(), Screen::Home { .. }));
}

#[test]
fn a_running_deploy_is_cancelled_after_a_confirmation() {
    let (mut app, fake) = app();
    to_deploy_form(&mut app);
    app.type_str("3");
    down(&mut app, DEPLOY_BOOT_ROW);
    app.press(KeyCode::Right); // enp3s0
    enter(&mut app);
    let Screen::DeploySummary(req) = app.screen().clone() else {
        panic!("{:?}", app.screen());
    };
    enter(&mut app);
    // Waiting, two joined, sending: the clients are receiving.
    for _ in 0..3 {
        assert!(next_msg(&mut app));
    }
    let Screen::DeployLive(live) = app.screen().clone() else {
        panic!("{:?}", app.screen());
    };
    assert!(render(&app).contains("Esc/c cancel"));
    // Esc asks first; n keeps the deploy going.
    app.press(KeyCode::Esc);
    assert!(app.cancel_ask);
    let text = render(&app);
    assert!(
        text.contains("udp-sender and the boot server stop"),
        "{text}"
    );
    snap("deploy_cancel_confirm", &app);
    app.press(KeyCode::Char('n'));
    assert!(!app.cancel_ask && !fake.deploy_cancelled());
    assert!(matches!(app.screen(), Screen::DeployLive(_)));
    // Ctrl-C asks the same (a deploy is a running job, not a reason to quit).
    ctrl_c(&mut app);
    assert!(app.cancel_ask);
    app.press(KeyCode::Esc);
    assert!(!app.cancel_ask && !fake.deploy_cancelled());
    // c asks too; y cancels: the job's flag is set and the screen says so.
    app.press(KeyCode::Char('c'));
    assert!(app.cancel_ask);
    app.press(KeyCode::Char('y'));
    assert!(!app.cancel_ask && fake.deploy_cancelled());
    let text = render(&app);
    assert!(
        text.contains("CANCELLING: stopping udp-sender and the boot server"),
        "{text}"
    );
    snap("deploy_cancelling", &app);
    // Once cancelling, Esc does not ask again; the job is still running.
    app.press(KeyCode::Esc);
    assert!(!app.cancel_ask && app.job_running());
    // The job ends with its table: every client without a report CANCELLED.
    app.update(Msg::Deploy(DeployEvent::Done(Ok(
        crate::tui::demo::deploy::cancelled(&req, &live),
    ))));
    assert!(!app.job_running());
    let res = deploy_result_of(&app).expect("the table").clone();
    assert!(res.cancelled && !res.all_ok);
    assert!(res.rows.iter().all(|r| r.result == "CANCELLED"));
    let text = render(&app);
    assert!(text.contains("Deploy: CANCELLED"), "{text}");
    assert!(
        text.contains("deploy CANCELLED: 0 of 3 client(s) ok"),
        "{text}"
    );
    snap("deploy_cancelled_done", &app);
}

#[test]
fn a_failed_deploy_shows_why() {
    let (mut app, _) = app();
    app.update(Msg::Deploy(DeployEvent::Done(Err(
        "udp-sender failed: exit status: 1".into(),
    ))));
    let text = render(&app);
    assert!(
        text.contains("The deploy stopped: udp-sender failed"),
        "{text}"
    );
}

fn render_client(v: &ClientView) -> String {
    let mut term = Terminal::new(TestBackend::new(80, 25)).expect("test backend");
    term.draw(|f| crate::tui::screens::deploy_client::draw(v, f))
        .expect("draw");
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    assert!(out.is_ascii(), "{out}");
    out
}

fn waiting(disk: Result<DiskInfo, String>) -> ClientView {
    let mut v = ClientView {
        server: "192.168.10.5:9200".into(),
        ..Default::default()
    };
    apply_state(&mut v, ClientState::Connecting);
    apply_state(
        &mut v,
        ClientState::Waiting {
            image: "lab-pc-2026-11-30".into(),
            stream_bytes: 19_412_883_456,
            disk,
        },
    );
    v
}

fn wdc() -> DiskInfo {
    DiskInfo {
        path: "/dev/sda".into(),
        model: Some("WDC_WD5000AAKX".into()),
        serial: Some("WD-WX31A".into()),
        size: 500_107_862_016,
        erased_data: false,
    }
}

#[test]
fn client_screen_says_which_disk_and_how_far() {
    let mut v = waiting(Ok(wdc()));
    let text = render_client(&v);
    assert!(
        text.contains("/dev/sda WDC_WD5000AAKX WD-WX31A  465.8 GiB  (will be overwritten)"),
        "{text}"
    );
    snap_text("deploy_client_waiting", text);
    apply_state(
        &mut v,
        ClientState::Receiving {
            bytes: 7_800_000_000,
        },
    );
    let text = render_client(&v);
    assert!(text.contains(" 40%"), "{text}");
    snap_text("deploy_client_receiving", text);
    apply_state(&mut v, ClientState::Restoring);
    apply_progress(
        &mut v,
        ProgressEvent::PhaseStart {
            name: "verify partition 3".into(),
            total_bytes: 1000,
        },
    );
    apply_progress(&mut v, ProgressEvent::Advance { bytes: 250 });
    assert_eq!(v.state, ClientStateView::Verifying);
    assert!(render_client(&v).contains(" 25%"));
    apply_state(
        &mut v,
        ClientState::Done {
            ok: true,
            message: "restored lab-pc-2026-11-30 onto /dev/sda".into(),
        },
    );
    let text = render_client(&v);
    assert!(text.contains("Deploy client: done"), "{text}");
}

#[test]
fn client_screen_says_why_no_disk_was_chosen() {
    let v = waiting(Err(
        "no target: no empty disk (a disk with data is never taken unless the kernel command line has ironclone.erase=any): /dev/sda WDC_WD5000AAKX holds data".into(),
    ));
    let text = render_client(&v);
    assert!(text.contains("none chosen: no target"), "{text}");
    snap_text("deploy_client_no_disk", text);
}
