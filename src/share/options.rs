//! The option string handed to the kernel's cifs client by mount(2). There is no
//! mount.cifs in the live system (it would drag in a dynamic helper), so ironclone does
//! what mount.cifs does: pass the server's address (`ip=`, the kernel resolves no names) and
//! the share (`unc=`), and the credentials. The kernel splits this string at commas and
//! reads `,,` as a literal comma inside a value (fs/smb/client/fs_context.c,
//! smb3_fs_context_parse_monolithic), so commas in a user name or password are doubled, not
//! refused. The password is held in a type whose Debug and Display never show it, so it can
//! not reach a log or an error message by accident.

use super::spec::SmbShare;
use super::ShareError;
use std::fmt;
use std::net::IpAddr;

/// A secret that never prints itself.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }

    /// A password file's content: the first line, without its line ending.
    pub fn from_file_content(content: &str) -> Password {
        let line = content.split('\n').next().unwrap_or("");
        Password(line.strip_suffix('\r').unwrap_or(line).to_string())
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// Typing into a password field (the TUI's share login).
    pub fn push(&mut self, c: char) {
        self.0.push(c);
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    /// The secret itself, for the one call that needs it (unlocking a repository).
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The secret as text, for the storage layer's S3 signer (which takes a `&str`).
    pub(crate) fn expose_for_storage(&self) -> &str {
        &self.0
    }

    /// How many characters were typed, for a masked field.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl Password {
    /// The key bytes cryptsetup takes for this passphrase (a LUKS restore's key).
    pub fn luks_key(&self) -> crate::unlock::LuksKey {
        crate::unlock::LuksKey::new(self.0.as_bytes().to_vec())
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        // As LuksKey's: fewer copies of the secret left in freed memory.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Who to log in as. No user means a guest login (what NAS "public" shares and QEMU's
/// built-in server expect).
#[derive(Clone, Debug, Default)]
pub struct SmbCredentials {
    pub user: Option<String>,
    pub domain: Option<String>,
    pub password: Option<Password>,
}

impl SmbCredentials {
    /// A login as people type it: `DOMAIN\user` (or `DOMAIN/user`) names the domain
    /// too, unless `domain` is given apart. An empty user is a guest login.
    pub fn login(user: &str, domain: Option<String>, password: Option<Password>) -> Self {
        let user = user.trim();
        if user.is_empty() {
            return SmbCredentials::default();
        }
        let (user, domain) = match (
            domain,
            user.split_once('\\').or_else(|| user.split_once('/')),
        ) {
            (Some(d), _) => (user.to_string(), Some(d)),
            (None, Some((d, u))) => (u.to_string(), Some(d.to_string())),
            (None, None) => (user.to_string(), None),
        };
        SmbCredentials {
            user: Some(user),
            domain,
            password,
        }
    }
}

/// Everything besides the share that shapes the mount.
#[derive(Clone, Debug, Default)]
pub struct SmbOptions {
    pub credentials: SmbCredentials,
    /// SMB dialect (`vers=`): "3.1.1", "3.0", "2.1", "1.0"; None lets the kernel negotiate.
    pub vers: Option<String>,
    pub read_only: bool,
}

/// The kernel option string. Its Debug/Display show `pass=<redacted>`; only
/// `as_kernel_data` (called right at mount(2)) holds the real password.
pub struct MountData {
    data: String,
    redacted: String,
}

impl MountData {
    pub fn as_kernel_data(&self) -> &str {
        &self.data
    }
}

impl fmt::Display for MountData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for MountData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MountData({})", self.redacted)
    }
}

/// A value in the kernel's comma-separated list: commas doubled, NUL refused (mount(2)
/// takes a C string, so a NUL would silently cut the option list short).
fn escape(field: &'static str, v: &str) -> Result<String, ShareError> {
    if v.contains('\0') {
        return Err(ShareError::BadOption {
            field,
            why: "contains a NUL byte".into(),
        });
    }
    Ok(v.replace(',', ",,"))
}

const VERSIONS: &[&str] = &["1.0", "2.0", "2.1", "3", "3.0", "3.02", "3.1.1", "default"];

/// Builds the cifs option string for a server already resolved to `ip`.
pub fn cifs_options(
    share: &SmbShare,
    ip: IpAddr,
    opts: &SmbOptions,
) -> Result<MountData, ShareError> {
    let mut common = vec![format!("ip={ip}"), format!("unc={}", share.unc())];
    if let Some(v) = &opts.vers {
        if !VERSIONS.contains(&v.as_str()) {
            return Err(ShareError::BadOption {
                field: "vers",
                why: format!(
                    "{v:?} is not an SMB version (one of {})",
                    VERSIONS.join(", ")
                ),
            });
        }
        common.push(format!("vers={v}"));
    }
    common.push(if opts.read_only { "ro" } else { "rw" }.into());
    // Repositories are written by root in the live system; ownership on the server is
    // the server's business, so files simply appear as root's here.
    common.push("uid=0,gid=0,file_mode=0644,dir_mode=0755".into());
    let c = &opts.credentials;
    match &c.user {
        None => {
            if c.password.is_some() {
                return Err(ShareError::BadOption {
                    field: "password",
                    why: "a password was given without a user name".into(),
                });
            }
            // "guest" alone is ignored by the kernel; an unknown user with an empty
            // password is what Samba's `map to guest = Bad User` and Windows map to guest.
            common.push("username=guest".into());
        }
        Some(u) => {
            if u.is_empty() {
                return Err(ShareError::BadOption {
                    field: "user",
                    why: "the user name is empty".into(),
                });
            }
            common.push(format!("username={}", escape("user", u)?));
            if let Some(d) = &c.domain {
                common.push(format!("domain={}", escape("domain", d)?));
            }
        }
    }
    let head = common.join(",");
    // The password goes last so a doubled comma at its end can never be read as the
    // start of the next option.
    let (data, redacted) = match (&c.user, &c.password) {
        (Some(_), Some(p)) => (
            format!("{head},password={}", escape("password", p.expose())?),
            format!("{head},password=<redacted>"),
        ),
        _ => (format!("{head},password="), format!("{head},password=")),
    };
    Ok(MountData { data, redacted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_spellings() {
        let l = |u: &str, d: Option<&str>| {
            let c = SmbCredentials::login(u, d.map(String::from), None);
            (c.user, c.domain)
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(l("CORP\\bob", None), (some("bob"), some("CORP")));
        assert_eq!(l("CORP/bob", None), (some("bob"), some("CORP")));
        assert_eq!(l("bob", None), (some("bob"), None));
        assert_eq!(l("bob", Some("X")), (some("bob"), some("X")));
        assert_eq!(l("  ", None), (None, None), "no user: a guest login");
    }

    fn share() -> SmbShare {
        SmbShare::parse("//nas/backups").unwrap()
    }
    fn ip() -> IpAddr {
        "10.0.2.4".parse().unwrap()
    }
    fn with(user: &str, pass: &str) -> SmbOptions {
        SmbOptions {
            credentials: SmbCredentials {
                user: Some(user.into()),
                domain: None,
                password: Some(Password::new(pass)),
            },
            ..Default::default()
        }
    }

    #[test]
    fn guest() {
        let d = cifs_options(&share(), ip(), &SmbOptions::default()).unwrap();
        assert_eq!(
            d.as_kernel_data(),
            "ip=10.0.2.4,unc=\\\\nas\\backups,rw,uid=0,gid=0,file_mode=0644,dir_mode=0755,username=guest,password="
        );
    }

    #[test]
    fn password_never_shown() {
        let o = with("alice", "s3cret!");
        let d = cifs_options(&share(), ip(), &o).unwrap();
        assert!(d
            .as_kernel_data()
            .ends_with(",username=alice,password=s3cret!"));
        for shown in [format!("{d}"), format!("{d:?}"), format!("{o:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert!(format!("{d}").ends_with("password=<redacted>"));
    }

    #[test]
    fn commas_doubled_as_the_kernel_parses_them() {
        let d = cifs_options(&share(), ip(), &with("dom,user", ",a,,b,")).unwrap();
        let k = d.as_kernel_data();
        assert!(k.contains(",username=dom,,user,"), "{k}");
        assert!(k.ends_with(",password=,,a,,,,b,,"), "{k}");
        // Undo what smb3_fs_context_parse_monolithic does and get the values back.
        assert_eq!(kernel_split(k).last().unwrap(), "password=,a,,b,");
        assert!(kernel_split(k).contains(&"username=dom,user".to_string()));
    }

    /// A model of the kernel's split: `,,` is a literal comma, `,` ends an option.
    fn kernel_split(s: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            if c == ',' {
                if it.peek() == Some(&',') {
                    it.next();
                    out.last_mut().unwrap().push(',');
                } else {
                    out.push(String::new());
                }
            } else {
                out.last_mut().unwrap().push(c);
            }
        }
        out
    }

    #[test]
    fn refusals() {
        assert!(cifs_options(&share(), ip(), &with("a", "x\0y")).is_err());
        let mut o = with("a", "pw-not-shown");
        o.credentials.user = None;
        let e = cifs_options(&share(), ip(), &o).unwrap_err().to_string();
        assert!(
            e.contains("without a user") && !e.contains("pw-not-shown"),
            "{e}"
        );
        let o = SmbOptions {
            vers: Some("9".into()),
            ..Default::default()
        };
        assert!(cifs_options(&share(), ip(), &o)
            .unwrap_err()
            .to_string()
            .contains("not an SMB version"));
    }

    #[test]
    fn password_file_first_line() {
        assert_eq!(Password::from_file_content("pw\r\nrest").expose(), "pw");
        assert_eq!(Password::from_file_content("a,b\n").expose(), "a,b");
    }
}
