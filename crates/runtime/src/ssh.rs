//! SSH key pairs for one run of a plan: ed25519, generated in memory from the OS's random
//! source, written (private key 0600) only into the environment's private directory, mounted
//! read-only in every step at [`scenario::SSH_KEYS_MOUNT`] and, as `authorized_keys`, in the
//! services that accept them. The private keys are secrets: [`SshKeys::secrets`] gives every
//! text of theirs that the runner must redact.

use std::collections::BTreeMap;

use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::rand_core::OsRng;
use ssh_key::{LineEnding, PrivateKey};

/// Lines of a private key file shorter than this are not redacted on their own (the last line
/// of the base64 body may be a few characters that ordinary text holds too).
const MIN_SECRET_LINE: usize = 16;

/// One key pair, in the OpenSSH formats.
#[derive(Clone)]
pub struct SshKeyPair {
    /// The private key file (`-----BEGIN OPENSSH PRIVATE KEY-----` …).
    pub private_openssh: String,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public_openssh: String,
}

impl std::fmt::Debug for SshKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKeyPair")
            .field("public_openssh", &self.public_openssh)
            .finish_non_exhaustive()
    }
}

/// The key pairs of one run of a plan, by name.
#[derive(Debug, Clone, Default)]
pub struct SshKeys {
    pairs: BTreeMap<String, SshKeyPair>,
}

impl SshKeys {
    /// A fresh ed25519 key pair for each name (the comment names the key and the harness).
    pub fn generate(names: &[String]) -> SshKeys {
        let pairs = names
            .iter()
            .map(|name| {
                let keypair = Ed25519Keypair::random(&mut OsRng);
                let comment = format!("conformance-{name}");
                let private = PrivateKey::new(KeypairData::Ed25519(keypair), &comment)
                    .expect("an ed25519 key pair is a valid private key");
                let private_openssh = private
                    .to_openssh(LineEnding::LF)
                    .expect("an unencrypted ed25519 key encodes")
                    .to_string();
                let public_openssh = private
                    .public_key()
                    .to_openssh()
                    .expect("an ed25519 public key encodes");
                (
                    name.clone(),
                    SshKeyPair {
                        private_openssh,
                        public_openssh,
                    },
                )
            })
            .collect();
        SshKeys { pairs }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&SshKeyPair> {
        self.pairs.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &SshKeyPair)> {
        self.pairs.iter()
    }

    /// Every text of the private keys the runner redacts: each file whole, and each line of
    /// its base64 body long enough to be its own (a log may show the file line by line, each
    /// behind a prefix). The public keys are not secrets.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for pair in self.pairs.values() {
            out.push(pair.private_openssh.clone());
            out.push(pair.private_openssh.trim_end().to_owned());
            out.extend(
                pair.private_openssh
                    .lines()
                    .filter(|line| !line.starts_with("-----") && line.len() >= MIN_SECRET_LINE)
                    .map(str::to_owned),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_openssh_ed25519_pairs_whose_private_text_is_secret() {
        let names = vec!["deploy".to_owned()];
        let (a, b) = (SshKeys::generate(&names), SshKeys::generate(&names));
        let (a, b) = (a.get("deploy").unwrap(), b.get("deploy").unwrap());
        assert_ne!(a.private_openssh, b.private_openssh);
        assert!(a
            .private_openssh
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(a.public_openssh.starts_with("ssh-ed25519 AAAA"));
        assert!(a.public_openssh.ends_with(" conformance-deploy"));
        let parsed = PrivateKey::from_openssh(&a.private_openssh).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), a.public_openssh);
        let keys = SshKeys::generate(&names);
        let secrets = keys.secrets();
        let private = &keys.get("deploy").unwrap().private_openssh;
        assert!(secrets.contains(private));
        let body: Vec<&str> = private
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(body.len() >= 3, "{body:?}");
        assert!(secrets.iter().any(|s| s == body[1]));
        assert!(!secrets
            .iter()
            .any(|s| s.contains(keys.get("deploy").unwrap().public_openssh.as_str())));
    }
}
