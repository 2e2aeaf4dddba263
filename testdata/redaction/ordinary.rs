//! Login and settings code of the kind an agent reads and writes: passwords, secrets and tokens
//! named everywhere, none of them present.

use std::env;

use argon2::{password_hash::SaltString, Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};

#[derive(Parser)]
struct Args {
    /// The database password (prefer DB_PASSWORD in the environment).
    #[arg(long, env = "DB_PASSWORD", hide_env_values = true)]
    password: Option<String>,

    /// Read the password from stdin instead.
    #[arg(long)]
    password_stdin: bool,
}

pub struct Settings {
    pub user: String,
    pub password: SecretString,
    pub secret_key: SecretString,
    pub token_ttl: u64,
    pub max_password_len: usize,
}

#[repr(C)]
pub struct Header {
    pub log_passwd: u32,
    pub flags: u16,
}

pub enum Check {
    Pass = 0x01,
    Fail = 0x02,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let password = env::var("DB_PASSWORD").unwrap_or_default();
        let secret_key = env::var("SECRET_KEY")?;
        Ok(Settings {
            user: env::var("DB_USER").unwrap_or_else(|_| "app".into()),
            password: password.into(),
            secret_key: secret_key.into(),
            token_ttl: 3600,
            max_password_len: 128,
        })
    }

    pub fn database_url(&self, host: &str) -> String {
        let password = self.password.expose_secret();
        format!("postgres://{}:{}@{host}/app", self.user, password)
    }
}

pub fn prompt() -> std::io::Result<String> {
    let password = rpassword::prompt_password("Password: ")?;
    if password.len() < 8 {
        eprintln!("password: too short (8 characters at least)");
    }
    Ok(password)
}

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    let hashed = Argon2::default().hash_password(password.as_bytes(), &salt)?;
    Ok(hashed.to_string())
}

pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

pub fn redact_url(mut url: url::Url) -> url::Url {
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_passwords_are_refused() {
        let secret = String::from("pw");
        assert!(secret.len() < 8, "password: {secret}");
        let cfg = super::Settings {
            user: "app".into(),
            password: String::new().into(),
            secret_key: "changeme".to_string().into(),
            token_ttl: 60,
            max_password_len: 64,
        };
        assert_eq!(cfg.token_ttl, 60);
    }
}
