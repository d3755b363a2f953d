//! Several engines: `--engine PLATFORM=ENDPOINT` maps platforms to Docker engines, so
//! arm64 builds natively on an arm64 machine instead of under qemu, and a large matrix
//! spreads over a few machines. These are existing engines (Docker with BuildKit, as
//! buildx nodes are), not a scheduler of dpy's own.
//!
//! An endpoint is `unix:///path`, `tcp://host:port` (TLS when DOCKER_CERT_PATH is set,
//! from its ca.pem, cert.pem and key.pem, as the docker CLI does), or
//! `ssh://user@host[:port]` (the ssh client runs `docker system dial-stdio` there).
//! Platforms no `--engine` names build on the default engine: DOCKER_HOST, or the local
//! socket. Several endpoints for one platform take its targets in turn.

use crate::engine::{Engine, EngineVersion};
use crate::error::{Error, Result};
use crate::platform::Platform;

/// One `--engine PLATFORM=ENDPOINT`, checked but not connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    pub platform: Platform,
    pub endpoint: String,
}

/// Parses `linux/arm64=ssh://me@arm-box`.
pub fn parse_spec(text: &str) -> Result<EngineSpec> {
    let (platform, endpoint) = text.split_once('=').ok_or_else(|| {
        Error::Usage(format!(
            "--engine {text:?}: give PLATFORM=ENDPOINT, e.g. linux/arm64=ssh://me@arm-host"
        ))
    })?;
    let platform: Platform = platform.parse()?;
    let scheme = endpoint.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("unix" | "tcp" | "ssh")) {
        return Err(Error::Usage(format!(
            "--engine {text:?}: the endpoint {endpoint:?} is not unix:///path, tcp://host:port or ssh://user@host"
        )));
    }
    // bollard's ssh transport hands ssh the host without the port (ssh then looks up
    // "host:port" as a name): a port goes into the ssh config, under a Host alias.
    if let Some(("ssh", rest)) = endpoint.split_once("://") {
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        if host.contains(':') {
            return Err(Error::Usage(format!(
                "--engine {text:?}: ssh endpoints take no port; give it in ~/.ssh/config (Host alias, HostName, Port) and use ssh://user@alias"
            )));
        }
    }
    Ok(EngineSpec {
        platform,
        endpoint: endpoint.to_string(),
    })
}

/// The endpoints among `specs` and the default engine (DOCKER_HOST) that dpy would reach
/// over plain TCP to another machine: `tcp://` without TLS (DOCKER_CERT_PATH for
/// `--engine`, DOCKER_CERT_PATH or DOCKER_TLS_VERIFY for DOCKER_HOST, as the docker CLI
/// and bollard read them), not on this machine's loopback. A push hands the engine the
/// registry credentials, which would cross the network in the clear.
pub fn cleartext(specs: &[EngineSpec]) -> Vec<String> {
    cleartext_with(specs, |name| std::env::var(name).ok())
}

fn cleartext_with(specs: &[EngineSpec], env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let tls = |names: &[&str]| names.iter().any(|n| env(n).is_some());
    let remote_tcp = |endpoint: &str| {
        endpoint
            .strip_prefix("tcp://")
            .is_some_and(|address| !crate::publish::is_loopback(address.trim_end_matches('/')))
    };
    let mut found: Vec<String> = Vec::new();
    if !tls(&["DOCKER_CERT_PATH"]) {
        found.extend(
            specs
                .iter()
                .map(|s| s.endpoint.clone())
                .filter(|e| remote_tcp(e)),
        );
    }
    if let Some(host) = env("DOCKER_HOST") {
        if remote_tcp(&host) && !tls(&["DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"]) {
            found.push(host);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A connected engine and the platform it runs natively.
#[derive(Clone)]
pub struct Member {
    pub engine: Engine,
    pub native: Platform,
}

impl Member {
    /// Whether `platform` can run on this engine: natively, or under the binfmt handlers
    /// of this machine when the engine is this machine's. A remote engine's emulation
    /// cannot be seen from here; its build says so if it lacks it.
    pub fn ensure_runnable(&self, platform: &Platform) -> Result<()> {
        if *platform == self.native || !self.engine.is_local() {
            return Ok(());
        }
        platform.ensure_runnable(&self.native)
    }
}

/// Every engine of a build: the default one, and those `--engine` names per platform.
#[derive(Clone)]
pub struct Pool {
    default: Member,
    given: Vec<(Platform, Vec<Member>)>,
}

impl Pool {
    /// Connects to every engine and asks each its platform: one that does not answer
    /// fails the build before anything is built.
    pub async fn connect(specs: &[EngineSpec]) -> Result<Pool> {
        let (default, _) = member(Engine::connect()?).await?;
        let mut given: Vec<(Platform, Vec<Member>)> = Vec::new();
        for spec in specs {
            let (m, _) = member(Engine::connect_to(&spec.endpoint)?).await?;
            match given.iter_mut().find(|(p, _)| *p == spec.platform) {
                Some((_, members)) => members.push(m),
                None => given.push((spec.platform.clone(), vec![m])),
            }
        }
        Ok(Pool { default, given })
    }

    /// The default engine's native platform: what a build with no --platform builds.
    pub fn default_native(&self) -> &Platform {
        &self.default.native
    }

    /// The engine that builds `platform` for the target at `turn` (its position).
    pub fn for_platform(&self, platform: &Platform, turn: usize) -> &Member {
        match self.given.iter().find(|(p, _)| p == platform) {
            Some((_, members)) => &members[turn % members.len()],
            None => &self.default,
        }
    }

    /// Every engine a platform may build on.
    pub fn all_for(&self, platform: &Platform) -> Vec<&Member> {
        match self.given.iter().find(|(p, _)| p == platform) {
            Some((_, members)) => members.iter().collect(),
            None => vec![&self.default],
        }
    }

    /// Every engine, once each.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.default).chain(self.given.iter().flat_map(|(_, m)| m.iter()))
    }
}

/// `engine` asked its version: a member of the pool, and what it said.
pub async fn member(engine: Engine) -> Result<(Member, EngineVersion)> {
    let version = engine.version().await?;
    let member = Member {
        native: Platform::from_engine_arch(&version.arch),
        engine,
    };
    Ok((member, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tcp_to_another_machine_is_cleartext() {
        let spec = |e: &str| parse_spec(&format!("linux/arm64={e}")).unwrap();
        let specs = [
            spec("tcp://arm-box:2375"),
            spec("tcp://127.0.0.1:2375"),
            spec("tcp://localhost:2375"),
            spec("tcp://127.0.0.1.example.net:2375"),
            spec("ssh://me@arm-box"),
            spec("unix:///run/docker.sock"),
        ];
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        }
        assert_eq!(
            cleartext_with(&specs, env(&[])),
            ["tcp://127.0.0.1.example.net:2375", "tcp://arm-box:2375"]
        );
        assert!(cleartext_with(&specs, env(&[("DOCKER_CERT_PATH", "/certs")])).is_empty());
        let host = [("DOCKER_HOST", "tcp://build-host:2375")];
        assert_eq!(cleartext_with(&[], env(&host)), ["tcp://build-host:2375"]);
        let verified = [
            ("DOCKER_HOST", "tcp://build-host:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
        ];
        assert!(cleartext_with(&[], env(&verified)).is_empty());
        let local = [("DOCKER_HOST", "tcp://127.0.0.1:2375")];
        assert!(cleartext_with(&[], env(&local)).is_empty());
    }

    fn member(endpoint: &str) -> Member {
        Member {
            engine: Engine::connect_to(endpoint).unwrap(),
            native: "linux/amd64".parse().unwrap(),
        }
    }

    /// Two engines for arm64 take its targets in turn; amd64, named by none, goes to the
    /// default engine. (Connecting sends nothing, so no engine needs to run.)
    #[test]
    fn several_engines_for_a_platform_take_its_targets_in_turn() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let pool = Pool {
            default: member("tcp://default:2375"),
            given: vec![(
                arm64.clone(),
                vec![member("tcp://a:2376"), member("tcp://b:2376")],
            )],
        };
        let at = |p: &Platform, turn| pool.for_platform(p, turn).engine.endpoint();
        assert_eq!(at(&arm64, 0), "tcp://a:2376");
        assert_eq!(at(&arm64, 1), "tcp://b:2376");
        assert_eq!(at(&arm64, 2), "tcp://a:2376");
        assert_eq!(at(&"linux/amd64".parse().unwrap(), 1), "tcp://default:2375");
        assert_eq!(pool.members().count(), 3);
    }

    #[test]
    fn an_engine_is_a_platform_and_an_endpoint() {
        let spec = parse_spec("linux/arm64=ssh://me@arm-host").unwrap();
        assert_eq!(spec.platform.to_string(), "linux/arm64");
        assert_eq!(spec.endpoint, "ssh://me@arm-host");
        for bad in [
            "linux/arm64",
            "linux/arm64=arm-host:2376",
            "linux/arm64=http://arm-host",
            "linux/arm64=ssh://me@arm-host:2222",
            "linux/arm65=unix:///run/docker.sock",
        ] {
            assert_eq!(parse_spec(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
