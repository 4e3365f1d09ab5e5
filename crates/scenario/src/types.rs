//! What a scenario file says: the types of the scenario language, which also generate its JSON
//! Schema.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The only version of the scenario language so far.
pub const SCHEMA_VERSION: u32 = 1;

/// Builders the harness knows. A scenario may only name these.
pub const KNOWN_BUILDERS: &[&str] = &["buildx", "kaniko", "docker", "buildah"];

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario language version; must be 1.
    pub version: u32,
    pub name: String,
    pub description: String,
    /// The documentation claims the scenario checks: ids of entries in the claims ledger
    /// (`claims/ledger.yaml`), e.g. `[no-push-skips-push]`. The ledger holds the quoted sentence,
    /// its page and section.
    pub claim: Vec<String>,
    /// The builders (matrix) the scenario runs on.
    pub builders: Vec<String>,
    /// Builders the scenario does not run on, each with the reason (reported as Skip), e.g.
    /// `kaniko: "PLUGIN_SOURCE_IMAGE is BuildX-only per the docs"`.
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    /// Builders known to break the promise, each with the reason (a documented discrepancy
    /// between the docs and the plugin's code) and exactly the assertions that fail on it.
    /// The result stays Fail; the test passes only while the plugin fails exactly there.
    #[serde(default)]
    pub expect: BTreeMap<String, ExpectedFailure>,
    /// The registries the scenario starts, by network alias (default: one, `registry`). Each is
    /// `${NAME}` (= `NAME:5000`) in strings; the first also holds the test base image
    /// `harness/busybox:1.37`.
    #[serde(default = "default_registries")]
    pub registries: Vec<String>,
    /// Registries that require basic auth (htpasswd), by name, e.g.
    /// `secured: {username: conformance, password: s3cret}`, or with several users, each a line
    /// of the htpasswd file: `secured: [{username: conformance, password: s3cret}, {username:
    /// puller, password: p2}]` (usernames unique). The harness's own client (and the base image
    /// it pushes, `base_image_in`) uses the first. The first registry cannot: it holds the base
    /// image the harness pushes.
    #[serde(default)]
    pub registry_auth: BTreeMap<String, RegistryUsers>,
    /// Other registries that also hold the test base image `harness/busybox:1.37`, pushed with
    /// their `registry_auth` credentials when they have some: e.g. `[secured]` for a base image
    /// only a plugin given the base-image connector's credentials can pull.
    #[serde(default)]
    pub base_image_in: Vec<String>,
    /// Registries served over plain HTTP, by name: `registry_tls: {plain: false}`. Every other
    /// registry serves HTTPS with a certificate from the run's CA, which the roles' images
    /// trust; a plain-HTTP registry is for scenarios about PLUGIN_INSECURE.
    #[serde(default)]
    pub registry_tls: BTreeMap<String, bool>,
    /// Step variables whose values are secret, by name (e.g. `[PLUGIN_API_KEY]`): redacted as
    /// `[redacted]` everywhere the harness stores or prints. `registry_auth` passwords and
    /// variables whose names contain PASSWORD, TOKEN or SECRET always are.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// SSH key pairs (ed25519) the harness generates for each run of a plan, by name (`[a-z0-9_-]`,
    /// e.g. `[deploy]`): the private key is `${ssh_key.NAME}` in steps (a read-only file
    /// outside the workspace) and a secret, redacted everywhere; services accept the public key.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Service containers on the plan's network, by network alias, e.g.
    /// `git: {role: sshd, ssh_authorized_keys: [deploy]}`: started from the profile's role with
    /// the environment, ready (their port answers) before the first step, torn down with it.
    /// `${service_ip.NAME}` is a service's address in steps.
    #[serde(default)]
    pub services: BTreeMap<String, crate::services::Service>,
    /// More base images for test Dockerfiles, pushed into the first registry before the steps:
    /// `[git]` = `${registry}/harness/git:1` (git and an SSH client; role `git`).
    #[serde(default)]
    pub base_images: Vec<String>,
    /// The Harness stage that steps written as Harness steps (`harness_step`) run in: its
    /// infrastructure (`kubernetes`, `cloud`, `vm`, `local`), feature flags, stage variables,
    /// the connectors the steps name (each standing for one of the scenario's registries) and
    /// the values of their `<+…>` expressions and placeholders, e.g.
    /// `{infrastructure: kubernetes, connectors: {docker_hub: {registry: registry}}, inputs:
    /// {"<+pipeline.sequenceId>": "7"}}`.
    #[serde(default)]
    pub harness_stage: Option<pipeline::Stage>,
    /// A directory, relative to the repository root, copied into the workspace (`/harness`)
    /// before the first step: usually a Dockerfile context under `fixtures/contexts/`.
    #[serde(default)]
    pub workspace: Option<String>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub captures: BTreeMap<String, Capture>,
    pub assertions: Vec<Assertion>,
    /// What the steps may leave in a registry or the shared daemon without an assertion naming
    /// it, each with the reason. Everything else they leave there is an unexpected push (a
    /// Fail): after the steps, every registry and the shared daemon are read in full.
    #[serde(default)]
    pub leftovers: Vec<Leftover>,
    /// Where the full accounting is not done, each with the reason: `daemon` (the shared
    /// daemon's images) or a registry's name. Use sparingly: it lets pushes there go unnoticed.
    #[serde(default)]
    pub loosen_accounting: BTreeMap<String, String>,
}

/// Something the steps may leave behind that no assertion names.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Leftover {
    /// A tag a registry may hold, e.g. `{repository: conformance/app, tag: "1.0", because: …}`.
    RegistryTag {
        repository: String,
        tag: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        because: String,
    },
    /// An image the shared daemon may hold, by reference, e.g.
    /// `{reference: "${registry}/conformance/app:1.0", because: …}`.
    DaemonImage { reference: String, because: String },
}

/// A builder's known discrepancy: these assertions fail on it, and only these.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// Why, with the source: e.g. "kaniko-ecr does not read PLUGIN_SKIP_PUSH_IF_TAG_EXISTS
    /// (plugin-contracts.md §2.3 f)".
    pub because: String,
    /// The assertions expected to fail, each written exactly as under `assertions`.
    pub fails: Vec<Assertion>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The users a registry behind htpasswd auth accepts: one (`{username, password}`) or a list of
/// them. The first is the harness's own.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RegistryUsers {
    /// One user.
    One(Credentials),
    /// Several users, the harness's own first.
    Many(Vec<Credentials>),
}

impl RegistryUsers {
    /// Every user, in the order written.
    pub fn users(&self) -> &[Credentials] {
        match self {
            RegistryUsers::One(credentials) => std::slice::from_ref(credentials),
            RegistryUsers::Many(list) => list,
        }
    }

    /// The first user: the one the harness's own client and its base image pushes use.
    /// `None` only for an empty list, which validation refuses.
    pub fn first(&self) -> Option<&Credentials> {
        self.users().first()
    }
}

impl From<Credentials> for RegistryUsers {
    fn from(credentials: Credentials) -> Self {
        RegistryUsers::One(credentials)
    }
}

/// A map is one user, a sequence several; either way the inner errors (unknown or missing
/// fields) are those of `Credentials`, with their locations.
impl<'de> Deserialize<'de> for RegistryUsers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RegistryUsers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`{username, password}` or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Credentials::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RegistryUsers::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<Credentials>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(RegistryUsers::Many)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One container, run to completion: a plugin (the builder under test by default, or another
/// role such as `scanner`), or with `run:` a shell command in the helper image.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// The role whose image runs this step; defaults to the builder under test (or to
    /// `busybox` for a `run` step). `${builder}` is the builder under test.
    #[serde(default)]
    pub role: Option<String>,
    /// A shell command (`sh -c`) run in the role's image instead of its entrypoint, with the
    /// workspace as the working directory, e.g. `run: ls -l image.tar`.
    #[serde(default)]
    pub run: Option<String>,
    /// Environment of the plugin container (`PLUGIN_*` variables). Values may name the
    /// registries (`${registry}`) and `${nonce}`, a random value drawn for each run of the
    /// plan, e.g. `PLUGIN_BUILD_ARGS: MARKER=${nonce}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Plugin settings, as in a Drone/Harness Plugin step: `dry_run: "true"` becomes
    /// `PLUGIN_DRY_RUN=true`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// `shared` (default): the scenario's DinD daemon is reachable through a shared `/var/run`
    /// (unless the profile calls the step's role `daemonless`: then it gets none).
    /// `own`: no shared `/var/run`; a plugin that needs a daemon starts its own (privileged).
    #[serde(default)]
    pub daemon: DaemonMode,
    /// `success` (default): run only if every earlier step succeeded. `always`: run anyway.
    #[serde(default)]
    pub when: When,
    /// Consecutive steps naming the same group run at the same time.
    #[serde(default)]
    pub parallel: Option<String>,
    /// How long the step may run, e.g. `120s` or `2m`.
    #[schemars(with = "String", extend("pattern" = "^[0-9]+\\s*(ms|s|m|h)"))]
    #[serde(
        default = "default_step_timeout",
        deserialize_with = "de_duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
    /// Limits on the step's container, as the Harness step's container resources set them, in
    /// Kubernetes quantities: e.g. `{memory: 500Mi, cpu: 400m}` (the docs' defaults). Memory is
    /// bytes, plain or with a suffix (`K`, `M`, `G`, `Ki`, `Mi`, `Gi`); CPU is cores, fractional
    /// (`0.4`) or in millicores (`400m`). The step's record keeps them.
    #[serde(default)]
    pub resources: Option<Resources>,
    /// The user the step's container runs as, as the Harness step's "Run as User" sets it: a
    /// numeric uid, optionally with a gid (`"1000"`, `"0"`, `"1000:1000"`). Default: the
    /// image's own user (root for every offline image). When a step sets one, the workspace
    /// and the DRONE_OUTPUT folder are writable by every user, as a pod's shared volume is.
    #[schemars(extend("pattern" = "^[0-9]{1,10}(:[0-9]{1,10})?$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Runs the step's container privileged (`true`) or not (`false`) whatever the profile's
    /// role says, as the Harness step's "Privileged" setting does; default: the role's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// The seccomp profile of the step's container, whatever the role says, as a pod's
    /// `securityContext.seccompProfile` sets it: `default` (the container runtime's, which
    /// Kubernetes applies with `RuntimeDefault`) or `unconfined` (e.g. for a rootless builder,
    /// which needs to create user namespaces). Default: the role's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    /// `run` (default): the role's image is given the run's CA where it reads CAs (the role's
    /// `trust`), so the scenario's HTTPS registries are trusted. `none`: the CA is not
    /// mounted, as for a registry whose certificate the step was never given (for
    /// PLUGIN_SKIP_TLS_VERIFY).
    #[serde(default, skip_serializing_if = "TrustMode::is_run")]
    pub trust: TrustMode,
    /// The step written as a Harness Build and Push step, as in a pipeline (`type:
    /// BuildAndPushDockerRegistry` or `…ECR`, `…GCR`, `…GAR`, `…ACR`, with its `spec`). Harness's
    /// choices are made for it: the builder by the docs' table (infrastructure, caching, feature
    /// flags), the role (`kaniko-ecr` for an ECR step) and the `PLUGIN_*` variables as Harness's
    /// CI manager sets them; the step then has no `role`, `run`, `env` or `settings` of its own.
    #[serde(default)]
    pub harness_step: Option<pipeline::BuildAndPushStep>,
    /// The Harness stage for this step only, instead of the scenario's `harness_stage` (e.g. the
    /// same step on another infrastructure).
    #[serde(default)]
    pub harness_stage: Option<pipeline::Stage>,
    /// What Harness made of `harness_step`, filled when the scenario is read.
    #[serde(skip)]
    #[schemars(skip)]
    pub translation: Option<HarnessTranslation>,
}

/// What Harness runs for a step written as a Harness step: the builder it picked and why, and
/// what the local registries stand in for.
#[derive(Debug, Clone, PartialEq)]
pub struct HarnessTranslation {
    pub step_type: &'static str,
    pub infrastructure: &'static str,
    pub builder: &'static str,
    pub why: String,
    pub stand_ins: Vec<String>,
}

/// Which certificate authorities a step's container is given (see [`Step::trust`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrustMode {
    #[default]
    Run,
    None,
}

impl TrustMode {
    fn is_run(&self) -> bool {
        *self == TrustMode::Run
    }
}

/// A step container's seccomp profile (see [`Step::seccomp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    Default,
    Unconfined,
}

/// A step container's limits (see [`Step::resources`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub cpu: Option<String>,
}

impl Resources {
    /// The memory limit in bytes, if any (the value was validated when the scenario was read).
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory
            .as_deref()
            .and_then(|m| crate::grammar::memory_quantity(m).ok())
    }

    /// The CPU limit in millicores, if any.
    pub fn millicores(&self) -> Option<u64> {
        self.cpu
            .as_deref()
            .and_then(|c| crate::grammar::cpu_quantity(c).ok())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DaemonMode {
    #[default]
    Shared,
    Own,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum When {
    #[default]
    Success,
    Always,
}

impl Scenario {
    /// Whether the registry `name` serves HTTPS (the default).
    pub fn registry_uses_tls(&self, name: &str) -> bool {
        self.registry_tls.get(name).copied().unwrap_or(true)
    }
}

fn default_registries() -> Vec<String> {
    vec!["registry".to_owned()]
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(300)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))
}

fn ser_duration<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

/// A value taken from what the steps left behind, for later assertions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Capture {
    /// A value in a JSON file in the workspace, by JSON pointer (RFC 6901), e.g.
    /// `{file: metadata.json, pointer: /containerimage.config.digest}`.
    Json { file: String, pointer: String },
    /// The config digest of an image archive in the workspace.
    TarballConfigDigest(String),
    /// The id of an image in the shared DinD daemon (the config digest on the classic store).
    DaemonImageId(String),
    /// The config digest of a tag a registry serves.
    RegistryConfigDigest(RegistryTag),
    /// The manifest digest of a tag a registry serves (what a pull by digest names).
    RegistryManifestDigest(RegistryTag),
    /// A value a step handed to later steps in its `DRONE_OUTPUT` file (dotenv), e.g.
    /// `{step: build, key: digest}`. Every step is given `DRONE_OUTPUT` as Harness CI gives it.
    Output { step: String, key: String },
}

impl Capture {
    /// The step after which the value is taken; `None`: after the last step.
    pub fn after(&self) -> Option<&str> {
        match self {
            Capture::RegistryConfigDigest(t) | Capture::RegistryManifestDigest(t) => {
                t.after.as_deref()
            }
            _ => None,
        }
    }
}

/// A tag in one of the scenario's registries, looked at when a step ends.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryTag {
    pub repository: String,
    pub tag: String,
    /// Which registry (default: the first).
    #[serde(default)]
    pub registry: Option<String>,
    /// Take the value when this step (or its parallel group) has ended, before later steps
    /// change the registry; default: after the last step.
    #[serde(default)]
    pub after: Option<String>,
}

/// What must hold after the steps ran.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// The named step exited with status 0.
    StepSucceeded(String),
    /// The named step exited with a non-zero status.
    StepFailed(String),
    /// The named step ran past its `timeout` and was stopped there (the step fails, as the docs
    /// say of a Build and Push step over its timeout).
    StepTimedOut(String),
    /// A captured value equals a text (placeholders allowed), e.g.
    /// `{capture: first_image, value: "${registry}/conformance/app:1.0"}`.
    CapturedEquals { capture: String, value: String },
    /// The registry holds no tag at all for the repository.
    NoTagsInRegistry {
        repository: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
    },
    /// The registry holds at least `min` tags (default 1) for the repository, whatever their
    /// names: for images a plugin names itself, e.g. the layers a remote build cache pushes
    /// (kaniko's `--cache-repo`, buildah's `--cache-to`), tagged with cache keys no scenario can
    /// know. Like `no_tags_in_registry`, it accounts for every tag of the repository, so the
    /// full accounting still catches anything pushed anywhere else.
    TagsInRegistry {
        repository: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        /// The fewest tags the repository must hold (at least 1).
        #[serde(default = "one")]
        min: usize,
    },
    /// The registry serves the tag; optionally with this config digest, manifest media type
    /// and number of layers.
    TagInRegistry {
        repository: String,
        tag: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        #[serde(default)]
        config_digest: Option<String>,
        /// The manifest digest the tag resolves to (what a pull by digest names), e.g.
        /// `${capture.reported}` from a plugin's DRONE_OUTPUT or artifact file.
        #[serde(default)]
        manifest_digest: Option<String>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        layers: Option<usize>,
        /// Labels the image config must carry, with these values.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// Files that must exist in the image's file system.
        #[serde(default)]
        files: Vec<String>,
        /// Files whose content must be this text, by path, e.g.
        /// `{/build-args: "greeting=hello"}`: each a regular file of the image's file system
        /// (layers applied in order, whiteouts honoured) whose bytes equal the text, one
        /// trailing line break on either side ignored (`echo` writes one). The text may name
        /// `${…}` values. At most the first 64 KiB of a file are read: a larger file is a Fail
        /// saying so, never read further.
        #[serde(default)]
        file_contents: BTreeMap<String, String>,
    },
    /// The shared DinD daemon holds an image by this reference.
    ImageInDaemon(String),
    /// The shared DinD daemon holds no image by this reference.
    NoImageInDaemon(String),
    /// A step's output contains the text, e.g. `{step: build, text: "built-by-run
    /// marker=${nonce}"}`: a line only the build's RUN prints, with this run's random value,
    /// proves the image was built in this step.
    LogContains { step: String, text: String },
    /// A step's output does not contain the text.
    LogLacks { step: String, text: String },
    /// An image archive in the workspace, holding exactly the image it names: every image in
    /// it (each manifest.json entry, each image manifest of index.json) must carry one of
    /// `tags` (and all of them be one image), or, without `tags`, there must be one.
    Tarball(TarballAssertion),
    /// The steps of a parallel group took less wall time together than the sum of their
    /// durations (they really ran at the same time).
    ParallelFasterThanSerial(String),
    /// A step's (or parallel group's) duration is at most `max` times another's, e.g.
    /// `{step: push-again, of: first-push, max: 0.5}`. A group's duration is its wall time.
    DurationRatioUnder { step: String, of: String, max: f64 },
    /// A step finished within a time budget, e.g. `{step: build, max: 60s}`.
    StepDurationUnder {
        step: String,
        #[schemars(with = "String")]
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        max: Duration,
    },
    /// A registry's own log contains the text (what the registry did with a request, e.g. that
    /// it refused a user's credentials: `error authenticating user "conformance"`).
    RegistryLogContains {
        text: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        /// More texts the same line must hold, e.g. `[/v2/conformance/app/blobs/]` next to
        /// `text: auth.user.name=pusher`: a request of the push to that repository was made as
        /// that user. (The registry names the user only in the lines of requests it answered
        /// with an error, such as a push's check for a blob the repository lacks.)
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        same_line: Vec<String>,
    },
    /// No line of a registry's own log contains the text (and every one of `same_line`), e.g.
    /// `{registry: secured, text: auth.user.name=puller, same_line: [/v2/conformance/app/]}`:
    /// no request for that repository that the registry logged with a user was puller's.
    RegistryLogLacks {
        text: String,
        /// Which registry (default: the first).
        #[serde(default)]
        registry: Option<String>,
        /// More texts a line must hold to count.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        same_line: Vec<String>,
    },
    /// Secrets a build used leave no trace: not one of their bytes, in any form, in a pushed
    /// image, an image archive or a step's output, e.g.
    /// `{value_of: [BUILD_TOKEN], image: {repository: conformance/app, tag: "1.0"}, step_logs:
    /// [build]}`. Messages never show a secret.
    SecretAbsent(SecretAbsentAssertion),
    /// Two pushed images are the same image to a user: the same files (type, mode, owner,
    /// size, content, link target; layers applied, whiteouts honoured) and the same config
    /// (env, entrypoint, cmd, workdir, user, exposed ports, labels, volumes, stop signal,
    /// created, os, architecture), layer count and history, except where `allow` says they
    /// may differ, e.g. `{a: {repository: equivalence/kaniko, tag: "1.0"}, b: {repository:
    /// equivalence/buildx, tag: "1.0"}, allow: [{key: history, because: …}]}`. Each image is
    /// read once. A Fail lists every difference (what, left, right).
    ImagesEquivalent(ImagesEquivalentAssertion),
}

/// Two images to compare and the differences allowed (see [`Assertion::ImagesEquivalent`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagesEquivalentAssertion {
    /// The left image.
    pub a: ImageInRegistry,
    /// The right image.
    pub b: ImageInRegistry,
    /// Differences that do not count, each with the reason (a legitimate difference between
    /// builders, never one a user would notice).
    #[serde(default)]
    pub allow: Vec<AllowedDifference>,
}

/// A difference two images may have: a glob over the difference's key, with the reason.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedDifference {
    /// A glob (`*` within a path component or label key, `**` across components, `?`, `[…]`,
    /// `{a,b}`) over a difference's key or its section: a config key (`created`, `os`,
    /// `architecture`, `user`, `workdir`, `entrypoint`, `cmd`, `stop_signal`, `env.NAME`,
    /// `labels.KEY`, `exposed_ports.PORT`, `volumes.PATH`), `layer_count`, `history.N`, or a
    /// file's absolute path. E.g. `history`, `labels.io.buildah.version`, `/var/cache/**`.
    pub key: String,
    /// Why the builders may differ there.
    pub because: String,
}

/// The sections of an `images_equivalent` difference's key (the part before the first `.`); a
/// file's key is its absolute path.
pub const IMAGE_DIFFERENCE_SECTIONS: &[&str] = &[
    "created",
    "os",
    "architecture",
    "user",
    "workdir",
    "entrypoint",
    "cmd",
    "stop_signal",
    "env",
    "labels",
    "exposed_ports",
    "volumes",
    "layer_count",
    "history",
];

/// Where a build's secrets must not be, and which secrets (see [`Assertion::SecretAbsent`]).
/// Each place gives one outcome. A secret is looked for as it is, JSON-escaped,
/// percent-encoded and base64-encoded (alone, or inside a longer encoding at any alignment).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretAbsentAssertion {
    /// Step variables whose values are the secrets, e.g. `[BUILD_TOKEN]`: every value a step
    /// gives the variable (`env` or `settings`), as the step got it. Each value must have at
    /// least 8 characters, and is redacted like those listed under `secrets:`.
    #[serde(default)]
    pub value_of: Vec<String>,
    /// Secrets written out (at least 8 characters each), e.g. what a file in the workspace
    /// holds; redacted like the others.
    #[serde(default)]
    pub text: Vec<String>,
    /// A tag a registry serves: its manifest (and platform manifest), its config (env, labels,
    /// history) and every byte of every layer, decompressed (names and contents of every
    /// file).
    #[serde(default)]
    pub image: Option<ImageInRegistry>,
    /// An image archive in the workspace (a relative path): every member, layers decompressed.
    #[serde(default)]
    pub tarball: Option<String>,
    /// Steps whose output must not show them: every byte the daemon kept of it (not only the
    /// end the result keeps), up to 1 GiB within 60 s (a larger output is a Fail saying so),
    /// searched before anything is redacted.
    #[serde(default)]
    pub step_logs: Vec<String>,
}

/// A tag in one of the scenario's registries.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageInRegistry {
    pub repository: String,
    pub tag: String,
    /// Which registry (default: the first).
    #[serde(default)]
    pub registry: Option<String>,
}

/// The shortest secret a `secret_absent` assertion looks for: shorter ones would be found in
/// ordinary bytes by chance.
pub const MIN_SECRET_LEN: usize = 8;

impl SecretAbsentAssertion {
    /// The secrets, each with what messages call it (`the value of BUILD_TOKEN`, `secret text
    /// 1`): every value a step of `scenario` gives a variable of `value_of`, then `text`. Values
    /// as written, placeholders not substituted.
    pub fn secrets<'a>(&'a self, scenario: &'a Scenario) -> Vec<(String, &'a str)> {
        let mut secrets = Vec::new();
        for name in &self.value_of {
            let mut values: Vec<&str> = scenario
                .steps
                .iter()
                .filter_map(|step| {
                    step.env.get(name).or_else(|| {
                        step.settings
                            .iter()
                            .find(|(k, _)| setting_variable(k) == *name)
                            .map(|(_, v)| v)
                    })
                })
                .map(String::as_str)
                .collect();
            values.sort_unstable();
            values.dedup();
            let count = values.len();
            for (i, value) in values.into_iter().enumerate() {
                secrets.push((Self::value_label(name, i, count), value));
            }
        }
        for (i, text) in self.text.iter().enumerate() {
            secrets.push((Self::text_label(i), text.as_str()));
        }
        secrets
    }

    /// What messages call value `i` (0-based) of `count` values of the variable `name`.
    pub fn value_label(name: &str, i: usize, count: usize) -> String {
        match count {
            0 | 1 => format!("the value of {name}"),
            _ => format!("value {} of {name}", i + 1),
        }
    }

    /// What messages call `text` entry `i` (0-based).
    pub fn text_label(i: usize) -> String {
        format!("secret text {}", i + 1)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TarballAssertion {
    /// Path relative to the workspace.
    pub path: String,
    /// `docker-archive` (has manifest.json) or `oci-layout` (index.json only).
    #[serde(default)]
    pub format: Option<ArchiveFormat>,
    /// `repo:tag` names the archive must carry: the exact set, and every image in it must
    /// carry one of them.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Labels the image config must carry, with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Files that must exist in the image's file system.
    #[serde(default)]
    pub files: Vec<String>,
    /// The image's config digest, e.g. `${capture.pushed}` or `sha256:<64 hex>`.
    #[serde(default)]
    pub config_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    DockerArchive,
    OciLayout,
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveFormat::DockerArchive => "docker-archive",
            ArchiveFormat::OciLayout => "oci-layout",
        })
    }
}

/// The JSON Schema of scenario files, generated from these types.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
}

impl Step {
    /// The role that runs this step for `builder`: `role` with `${builder}` replaced, else
    /// `busybox` for a `run` step, else the builder itself.
    pub fn role_for(&self, builder: &str) -> String {
        match (&self.role, &self.run) {
            (Some(role), _) => role.replace("${builder}", builder),
            (None, Some(_)) => "busybox".to_owned(),
            (None, None) => builder.to_owned(),
        }
    }

    /// The step's environment: `settings` as `PLUGIN_*` variables, then `env`.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self
            .settings
            .iter()
            .map(|(k, v)| (setting_variable(k), v.clone()))
            .collect();
        env.extend(self.env.clone());
        env
    }
}

/// `source_tar_path` → `PLUGIN_SOURCE_TAR_PATH`.
pub fn setting_variable(setting: &str) -> String {
    format!("PLUGIN_{}", setting.to_ascii_uppercase())
}

fn one() -> usize {
    1
}
