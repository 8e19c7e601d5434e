//! systemd calendar specs (`OnCalendar=`). systemd's grammar is large (`Mon..Fri
//! 02:00`, `*-*-1/2`, time zones), so it is not re-implemented: `systemd-analyze
//! calendar` is the reference, run at init (exit code checked, its message shown) and
//! by `status` for the next elapse when no running systemd can be asked.

use super::error::ScheduleError;
use crate::resize::{run_tool, ToolError};

pub const DEFAULT_CALENDAR: &str = "daily";

/// What `systemd-analyze calendar` made of a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarCheck {
    pub normalized: String,
    pub next_elapse: Option<String>,
}

/// Validates `spec` with systemd-analyze. `Ok(None)` when the tool is not installed
/// (a build root without systemd): the caller warns, systemd checks at load time.
pub fn check(spec: &str) -> Result<Option<CalendarCheck>, ScheduleError> {
    if spec.trim().is_empty() || spec.contains('\n') {
        return Err(ScheduleError::Calendar {
            spec: spec.into(),
            why: "empty or more than one line".into(),
        });
    }
    match run_tool("systemd-analyze", &["calendar", spec], None, &[0]) {
        Ok(out) => Ok(Some(parse_output(&out.stdout))),
        Err(ToolError::Spawn { .. }) => Ok(None),
        Err(ToolError::Failed { stderr, code, .. }) => Err(ScheduleError::Calendar {
            spec: spec.into(),
            why: format!(
                "systemd-analyze calendar rejected it (exit code {code}): {}",
                stderr.trim()
            ),
        }),
        Err(e) => Err(e.into()),
    }
}

/// `Normalized form:` and `Next elapse:` lines of systemd-analyze's report.
pub fn parse_output(text: &str) -> CalendarCheck {
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .next()
    };
    CalendarCheck {
        normalized: field("Normalized form:").unwrap_or_default(),
        next_elapse: field("Next elapse:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_report() {
        let t = "  Original form: daily\nNormalized form: *-*-* 00:00:00\n    Next elapse: Thu 2026-12-03 00:00:00 UTC\n";
        let c = parse_output(t);
        assert_eq!(c.normalized, "*-*-* 00:00:00");
        assert_eq!(
            c.next_elapse.as_deref(),
            Some("Thu 2026-12-03 00:00:00 UTC")
        );
    }

    #[test]
    fn rejects_bad_spec_with_systemds_words() {
        match check("bogus spec") {
            Ok(None) => {} // no systemd-analyze here
            Err(e) => assert!(e.to_string().contains("Failed to parse"), "{e}"),
            Ok(Some(c)) => panic!("accepted: {c:?}"),
        }
        if let Ok(Some(c)) = check("daily") {
            assert_eq!(c.normalized, "*-*-* 00:00:00");
        }
    }
}
