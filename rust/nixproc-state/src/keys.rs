//! age keys: the host identity, the recipients snapshots are encrypted
//! to, and the identities tried to decrypt them.
//!
//! Files are in `age-keygen` format: one `AGE-SECRET-KEY-1…` per line,
//! `#` comments and blank lines ignored. Messages name files and public
//! keys (`age1…`), never secret key material.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use anyhow::{anyhow, bail, Context, Result};

/// Where keys come from.
#[derive(Debug, Clone, Default)]
pub struct KeyConfig {
    /// The host identity file (created 0600 by `keygen`, or on first use
    /// when `create_host_identity`).
    pub host_identity: PathBuf,
    pub create_host_identity: bool,
    /// Extra recipients (`age1…`), e.g. from NIXPROC_STATE_RECIPIENTS.
    pub recipients: Vec<String>,
    /// Files with one recipient per line (`#` comments).
    pub recipients_files: Vec<PathBuf>,
    /// Identity files for decryption (`-i`); the host identity is tried too.
    pub identity_files: Vec<PathBuf>,
    /// Store units unencrypted (development only).
    pub no_encryption: bool,
}

/// An identity loaded from a file, with where it came from (for messages).
struct LoadedIdentity {
    file: PathBuf,
    public: String,
    identity: age::x25519::Identity,
}

/// The loaded keys.
///
/// `load` succeeds when there is something to do with them: recipients to
/// encrypt to, identities to decrypt with, or `no_encryption`. With
/// identities but no recipients (an encrypt-only host restoring with
/// `-i`), taking a snapshot fails with the "no recipients" message.
pub struct Keys {
    recipients: Vec<age::x25519::Recipient>,
    identities: Vec<LoadedIdentity>,
    no_encryption: bool,
}

const NO_RECIPIENTS: &str = "snapshots are encrypted, but there is no recipient to encrypt \
     them to: run `nixproc state keygen` to create the host identity, or pass --recipient \
     age1… (or --no-encryption, for development only)";

impl Keys {
    pub fn load(cfg: &KeyConfig) -> Result<Keys> {
        let mut recipients = Vec::new();
        let mut identities = Vec::new();
        let host = &cfg.host_identity;
        let host_exists = !host.as_os_str().is_empty() && host.exists();
        if host_exists {
            identities.extend(read_identities(host)?);
        } else if cfg.create_host_identity && !host.as_os_str().is_empty() {
            Keys::generate(host)?;
            identities.extend(read_identities(host)?);
        }
        // The host identity's own public key is a recipient.
        for id in &identities {
            recipients.push(id.identity.to_public());
        }
        for r in &cfg.recipients {
            recipients.push(parse_recipient(r, "--recipient")?);
        }
        for f in &cfg.recipients_files {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading recipients file {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let what = format!("line {} of {}", n + 1, f.display());
                recipients.push(parse_recipient(line, &what)?);
            }
        }
        for f in &cfg.identity_files {
            identities.extend(read_identities(f)?);
        }
        // Same key from two places: once.
        let mut seen = std::collections::BTreeSet::new();
        recipients.retain(|r| seen.insert(r.to_string()));
        if recipients.is_empty() && identities.is_empty() && !cfg.no_encryption {
            bail!("{NO_RECIPIENTS}");
        }
        Ok(Keys {
            recipients,
            identities,
            no_encryption: cfg.no_encryption,
        })
    }

    /// Keys that store units unencrypted (tests, development).
    pub fn unencrypted() -> Keys {
        Keys {
            recipients: Vec::new(),
            identities: Vec::new(),
            no_encryption: true,
        }
    }

    /// The recipients units are encrypted to, as `age1…` strings (empty
    /// when units are stored unencrypted).
    pub fn recipients(&self) -> Vec<String> {
        if self.no_encryption {
            return Vec::new();
        }
        self.recipients.iter().map(|r| r.to_string()).collect()
    }

    /// The same recipients, no identities (what a pending snapshot keeps).
    pub(crate) fn encrypt_only(&self) -> Keys {
        Keys {
            recipients: self.recipients.clone(),
            identities: Vec::new(),
            no_encryption: self.no_encryption,
        }
    }

    /// Whether new snapshots are stored unencrypted.
    pub fn no_encryption(&self) -> bool {
        self.no_encryption
    }

    /// The identity files loaded for decryption, with their public keys.
    pub fn identity_files(&self) -> Vec<(PathBuf, String)> {
        self.identities
            .iter()
            .map(|i| (i.file.clone(), i.public.clone()))
            .collect()
    }

    /// Writes a new identity to `path` (mode 0600, atomically: a temporary
    /// file renamed into place) in `age-keygen` format and returns its
    /// public key. Refuses to overwrite an existing file.
    pub fn generate(path: &Path) -> Result<String> {
        if path.symlink_metadata().is_ok() {
            bail!(
                "{} exists already; not overwriting an identity (remove it first if you \
                 really mean to lose access to what is encrypted to it)",
                path.display()
            );
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.unwrap_or_else(|| "identity".into()),
            crate::store::random_hex()
        ));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            write!(
                f,
                "# created: {created}\n# public key: {public}\n{}\n",
                id.to_string().expose_secret()
            )?;
            f.sync_all()?;
            // Not `rename`: it would replace a file created meanwhile.
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)?;
            crate::store::fsync_dir(dir)
        };
        let r = write();
        let _ = std::fs::remove_file(&tmp);
        r.with_context(|| format!("writing identity {}", path.display()))?;
        Ok(public)
    }

    /// Encrypts `w`'s input to the recipients (or passes it through
    /// unencrypted). The caller must call [`Sink::finish`].
    pub(crate) fn encrypt<W: Write>(&self, w: W) -> Result<Sink<W>> {
        if self.no_encryption {
            return Ok(Sink::Plain(w));
        }
        if self.recipients.is_empty() {
            bail!("{NO_RECIPIENTS}");
        }
        let enc = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| anyhow!("age: {e}"))?;
        Ok(Sink::Age(enc.wrap_output(w)?))
    }

    /// Decrypts `r`, a file of snapshot `what` encrypted to `recipients`
    /// (from its manifest; empty = not encrypted).
    pub(crate) fn decrypt<'r, R: Read + Send + 'r>(
        &self,
        r: R,
        recipients: &[String],
        what: &str,
    ) -> Result<Box<dyn Read + Send + 'r>> {
        if recipients.is_empty() {
            return Ok(Box::new(r));
        }
        let dec = age::Decryptor::new(r).map_err(|e| anyhow!("{what} is not an age file: {e}"))?;
        let ids = self
            .identities
            .iter()
            .map(|i| &i.identity as &dyn age::Identity);
        match dec.decrypt(ids) {
            Ok(reader) => Ok(Box::new(reader)),
            Err(age::DecryptError::NoMatchingKeys) => Err(self.no_match(recipients, what)),
            Err(e) => Err(anyhow!("decrypting {what}: {e}")),
        }
    }

    fn no_match(&self, recipients: &[String], what: &str) -> anyhow::Error {
        let tried = if self.identities.is_empty() {
            "no identity was given (pass -i FILE, or create the host identity with \
             `nixproc state keygen`)"
                .to_string()
        } else {
            let list: Vec<String> = self
                .identities
                .iter()
                .map(|i| format!("{} ({})", i.file.display(), i.public))
                .collect();
            format!("identities tried: {}", list.join(", "))
        };
        anyhow!(
            "cannot decrypt {what}: it is encrypted to {}; {tried}",
            recipients.join(", ")
        )
    }
}

fn parse_recipient(s: &str, what: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(s.trim())
        .map_err(|e| anyhow!("{what}: {s:?} is not an age recipient (age1…): {e}"))
}

fn read_identities(path: &Path) -> Result<Vec<LoadedIdentity>> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .with_context(|| format!("reading identity file {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = age::x25519::Identity::from_str(line).map_err(|_| {
            // Never echo the line: it may be (damaged) key material.
            anyhow!(
                "line {} of {} is not an age identity (AGE-SECRET-KEY-1…)",
                n + 1,
                path.display()
            )
        })?;
        out.push(LoadedIdentity {
            file: path.to_path_buf(),
            public: identity.to_public().to_string(),
            identity,
        });
    }
    if out.is_empty() {
        bail!("{} holds no age identity", path.display());
    }
    Ok(out)
}

/// The encryption stage of the write pipeline.
pub(crate) enum Sink<W: Write> {
    Age(age::stream::StreamWriter<W>),
    Plain(W),
}

impl<W: Write> Sink<W> {
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Sink::Age(s) => s.finish(),
            Sink::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Age(s) => s.write(buf),
            Sink::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Age(s) => s.flush(),
            Sink::Plain(w) => w.flush(),
        }
    }
}
