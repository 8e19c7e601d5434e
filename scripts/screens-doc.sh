#!/bin/sh
# Regenerates docs/SCREENS.md from the TUI's insta snapshots (80x25, as on the Linux
# console). Run after `cargo test --lib tui` when a screen changed.
set -eu
cd "$(dirname "$0")/.."
snaps=src/tui/snapshots
out=docs/SCREENS.md
shot() { # name title
    f="$snaps/ironclone__tui__tests__$1.snap"
    [ -f "$f" ] || { echo "missing snapshot $f" >&2; exit 1; }
    printf '## %s\n\n```text\n' "$2"
    # insta files: a YAML header between two '---' lines, then the screen.
    awk 'n >= 2 { print } /^---$/ { n++ }' "$f"
    printf '```\n\n'
}
# shellcheck disable=SC2016 # the backquotes are Markdown, printed as they are
{
    printf '# ironclone TUI screens\n\n'
    printf 'Rendered at 80x25 by the snapshot tests in `src/tui/tests.rs` (demo data from\n'
    printf '`src/tui/demo/`); regenerate with `scripts/screens-doc.sh`. Plain ASCII, so the\n'
    printf 'Linux console and serial consoles show them as here; the selection is also bold\n'
    printf 'and reversed on a real terminal. Try them with `ironclone --demo-data`.\n\n'
    shot home "Home"
    shot disks_backup_hibernated "Backup: choose the source disk (hibernated Windows warning)"
    shot disks_backup_journal "Disk picker: unreplayed ext4 journal"
    shot disks_backup_lvm "Disk picker: an LVM physical volume and its logical volumes"
    shot repos "Repository picker"
    shot repos_typing_path "Repository picker: typing a path (what it opens is said before Enter)"
    shot share_login_refused "Share login: a guest could not mount //nas/backups (the password shows as stars)"
    shot remote_login_s3 "Remote repository: S3 credentials (endpoint prefilled from AWS_ENDPOINT_URL, secret as stars)"
    shot remote_login_s3_refused "Remote repository: a refused secret (Enter goes back to the fields)"
    shot remote_login_sftp "Remote repository: SFTP key file"
    shot remote_host_key "Remote repository: an unknown SFTP host key, trusted by typing yes"
    shot images_browse "Images in a repository"
    shot images_clonezilla "Images: Clonezilla image folders in the opened folder (/home/partimag)"
    shot images_clonezilla_partition "Images: one partition of a Clonezilla saveparts image"
    shot luks_key_wrong "Restore: the image's LUKS passphrase (stars; a wrong one is said so and asked again)"
    shot saveparts_targets "Restore a saved partition: which partition to overwrite"
    shot saveparts_plan "Restore a saved partition: its plan (no table written)"
    shot saveparts_confirm "Restore a saved partition: destructive confirmation"
    shot backup_name "Backup: name the image"
    shot backup_summary "Backup: summary"
    shot backup_progress "Backup: progress (a read error on a failing disk)"
    shot backup_done "Backup: done and verified"
    shot restore_plan_making "Restore: the plan being made (the image's manifest is read on its own thread)"
    shot restore_plan "Restore: the planner's layout table"
    shot restore_plan_typing_size "Restore: editing a partition's size"
    shot restore_plan_does_not_fit "Restore: a size that does not fit"
    shot disks_restore_refused_boot_medium "Restore: the boot medium is refused as a target"
    shot confirm_empty "Restore: destructive confirmation"
    shot confirm_refused "Restore: confirmation refused (not the exact name)"
    shot cancel_ask "Ctrl-C during a job"
    shot restore_done_boot_repairs "Restore: done, with the boot repairs"
    shot verify_done "Verify: done"
    shot schedule_form "Schedule: when, and how much to keep (on the installed system)"
    shot schedule_form_bad_budget "Schedule: a field that is wrong is named"
    shot schedule_summary "Schedule: what will be installed"
    shot schedule_done "Schedule: installed"
    shot deploy_form "Deploy to many machines: clients, waits, target rule, network boot"
    shot deploy_form_bad_target "Deploy: a field that is wrong is named"
    shot deploy_summary "Deploy: summary (serving network boot on enp3s0)"
    shot deploy_live "Deploy: clients joining and receiving"
    shot deploy_done "Deploy: the sender's table (a dropped client and how to finish it)"
    shot deploy_cancel_confirm "Deploy: cancel a running deploy? (Esc or c on the live screen, y to confirm)"
    shot deploy_cancelled_done "Deploy: cancelled (every client without a report CANCELLED)"
    shot deploy_client_waiting "Deploy client console: waiting for the server"
    shot deploy_client_receiving "Deploy client console: receiving"
    shot deploy_client_no_disk "Deploy client console: no disk chosen, and why"
    shot error "Error screen"
} > "$out"
echo "wrote $out"
