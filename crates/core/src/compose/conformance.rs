//! The conformance suite: one fixture per feature of the compose specification we take, written
//! from the specification (and compose-go's loader tests as a guide to its corners). Each asserts
//! the normalized model — what reaches the engine — or the exact problem reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn files(list: &[(&str, &str)]) -> MemFiles {
    let mut fs = MemFiles::default();
    for (p, t) in list {
        fs.0.insert(PathBuf::from(p), t.to_string());
    }
    fs
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

fn load_ws(list: &[(&str, &str)], shell: &[(&str, &str)]) -> ComposeFile {
    let fs = files(list);
    let e = env(shell);
    load_mem(&fs, Path::new("/ws"), &e)
}

fn one(text: &str) -> ComposeFile {
    load_ws(&[("/ws/compose.yaml", text)], &[])
}

fn svc<'a>(c: &'a ComposeFile, name: &str) -> &'a ComposeService {
    c.service(name)
        .unwrap_or_else(|| panic!("{name} did not load: {:#?}", c.diags))
}

fn errors(c: &ComposeFile) -> Vec<String> {
    c.errors()
        .map(|d| format!("{}: {}", d.key, d.message))
        .collect()
}

fn warnings(c: &ComposeFile) -> Vec<String> {
    c.warnings()
        .map(|d| format!("{}: {}", d.key, d.message))
        .collect()
}

#[test]
fn top_level_networks_secrets_configs_extensions_version_and_name_are_taken() {
    let c = one("version: '3.9'\nname: shop\nx-common: &common\n  restart: unless-stopped\nservices:\n  db:\n    <<: *common\n    image: postgres\n    x-note: internal\nnetworks:\n  back: {}\nvolumes:\n  data: {}\nsecrets:\n  pw:\n    file: ./pw.txt\nconfigs:\n  conf:\n    file: ./c.conf\nx-other: 1\n");
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    assert_eq!(c.name.as_deref(), Some("shop"));
    assert_eq!(svc(&c, "db").restart.as_deref(), Some("unless-stopped"));
    assert!(c.networks.contains_key("back") && c.volumes.contains_key("data"));
    assert_eq!(
        c.secrets["pw"].file.as_deref(),
        Some(Path::new("/ws/pw.txt"))
    );
}

#[test]
fn anchors_and_merge_keys_inside_environment_and_labels() {
    let c = one("x-env: &env\n  TZ: UTC\n  LEVEL: info\nx-labels: &labels\n  team: core\nservices:\n  a:\n    image: x\n    environment:\n      <<: *env\n      LEVEL: debug\n    labels:\n      <<: *labels\n      extra: 'yes'\n");
    let a = svc(&c, "a");
    assert_eq!(a.environment["TZ"], "UTC");
    assert_eq!(a.environment["LEVEL"], "debug");
    assert_eq!(a.labels["team"], "core");
}

#[test]
fn interpolation_order_shell_then_profile_then_dotenv_and_unset_is_a_warning() {
    let fs = files(&[
        ("/ws/compose.yaml", "services:\n  a:\n    image: ${IMG}\n    environment:\n      FROM_SHELL: ${S}\n      FROM_PROFILE: ${P}\n      FROM_DOTENV: ${D}\n      MISSING: ${NOPE}\n      DEFAULTED: ${NOPE2:-d}\n"),
        ("/ws/.env", "IMG=busybox\nS=dotenv\nP=dotenv\nD=dotenv\n"),
    ]);
    let shell = env(&[("S", "shell")]);
    let profile = vec![
        ("P".to_string(), "profile".to_string()),
        ("S".into(), "profile".into()),
    ];
    let c = load(&LoadRequest {
        fs: &fs,
        root: Path::new("/ws"),
        shell: &shell,
        profile_vars: &profile,
        compose_profiles: &[],
    })
    .unwrap();
    let a = svc(&c, "a");
    assert_eq!(a.image.as_deref(), Some("busybox"));
    assert_eq!(a.environment["FROM_SHELL"], "shell");
    assert_eq!(a.environment["FROM_PROFILE"], "profile");
    assert_eq!(a.environment["FROM_DOTENV"], "dotenv");
    assert_eq!(a.environment["MISSING"], "");
    assert_eq!(a.environment["DEFAULTED"], "d");
    let w = warnings(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("services.a.environment.MISSING")
            && w[0].contains("NOPE variable is not set"),
        "{w:?}"
    );
    assert_eq!(c.warnings().next().unwrap().line, Some(8));
}

#[test]
fn a_required_variable_breaks_only_its_service() {
    let c = one("services:\n  a:\n    image: x\n    environment:\n      PW: ${PW:?set PW}\n  b:\n    image: y\n");
    assert!(c.service("a").is_none());
    assert!(c.service("b").is_some());
    assert_eq!(c.names, vec!["a", "b"]);
    let e = service_error(&c, "a").unwrap();
    assert_eq!(e.exit_code(), crate::exit::ExitCode::EnvMissing);
    assert!(
        e.message().contains(
            "compose.yaml:5: services.a.environment.PW: needs PW, which is not set: set PW"
        ),
        "{}",
        e.message()
    );
    assert!(service_error(&c, "b").is_none());
}

#[test]
fn extends_in_the_same_file_and_from_another_file() {
    let c = load_ws(&[
        ("/ws/compose.yaml", "services:\n  base:\n    image: busybox\n    environment: [TZ=UTC, PORT=80]\n    volumes: ['./a:/data']\n  web:\n    extends: base\n    environment:\n      PORT: 8080\n  worker:\n    extends:\n      file: common/base.yml\n      service: job\n    command: work\n"),
        ("/ws/common/base.yml", "services:\n  job:\n    image: runner\n    command: idle\n    env_file: job.env\n    volumes: ['./cache:/cache']\n"),
    ], &[]);
    assert!(
        errors(&c).iter().all(|e| !e.contains("extends")),
        "{:?}",
        errors(&c)
    );
    let web = svc(&c, "web");
    assert_eq!(web.image.as_deref(), Some("busybox"));
    assert_eq!(web.environment["PORT"], "8080");
    assert_eq!(web.environment["TZ"], "UTC");
    let w = svc(&c, "worker");
    assert_eq!(w.image.as_deref(), Some("runner"));
    assert_eq!(w.command, Some(vec!["work".to_string()]));
    assert_eq!(
        w.env_files[0].path,
        PathBuf::from("/ws/common/job.env"),
        "paths of another file resolve against it"
    );
    assert_eq!(w.volumes[0].source.as_deref(), Some("/ws/common/cache"));
}

#[test]
fn extends_cycles_and_unknown_bases_are_errors_of_that_service() {
    let c = one("services:\n  a:\n    extends: b\n    image: x\n  b:\n    extends: a\n    image: y\n  c:\n    extends: nowhere\n    image: z\n  d:\n    image: ok\n");
    let e = errors(&c).join("\n");
    assert!(e.contains("extends cycle"), "{e}");
    assert!(
        e.contains("services.c.extends: names service \"nowhere\""),
        "{e}"
    );
    assert!(c.service("d").is_some());
}

#[test]
fn include_brings_services_with_their_own_paths_and_a_conflict_is_a_warning() {
    let c = load_ws(&[
        ("/ws/compose.yaml", "include:\n  - infra/compose.yaml\n  - path: [other.yaml]\nservices:\n  app:\n    image: app\n    depends_on: [cache]\n"),
        ("/ws/infra/compose.yaml", "services:\n  cache:\n    image: redis\n    volumes: ['./redis.conf:/etc/redis.conf:ro']\nvolumes:\n  cachedata: {}\n"),
        ("/ws/other.yaml", "services:\n  app:\n    image: dup\n"),
    ], &[]);
    let cache = svc(&c, "cache");
    assert_eq!(
        cache.volumes[0].source.as_deref(),
        Some("/ws/infra/redis.conf")
    );
    assert!(c.volumes.contains_key("cachedata"));
    assert!(
        warnings(&c).iter().any(|e| e.contains("services.app: is defined here and in the included /ws/other.yaml")),
        "{:?}",
        warnings(&c)
    );
    assert_eq!(
        svc(&c, "app").image.as_deref(),
        Some("app"),
        "the including file's definition wins"
    );
}

#[test]
fn an_included_project_takes_its_own_env_defaults_and_ours_win() {
    let c = load_ws(
        &[
            ("/ws/compose.yaml", "include:\n  - infra/compose.yaml\n  - path: tools/compose.yaml\n    env_file: tools/custom.env\nservices:\n  app:\n    image: app\n"),
            ("/ws/.env", "SHARED=from-main\n"),
            ("/ws/infra/compose.yaml", "services:\n  cache:\n    image: ${CACHE_IMAGE}\n    environment:\n      SHARED: ${SHARED}\n"),
            ("/ws/infra/.env", "CACHE_IMAGE=redis:7\nSHARED=from-infra\n"),
            ("/ws/tools/compose.yaml", "services:\n  tool:\n    image: ${TOOL_IMAGE}\n"),
            ("/ws/tools/custom.env", "TOOL_IMAGE=busybox:1\n"),
        ],
        &[],
    );
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    assert_eq!(svc(&c, "cache").image.as_deref(), Some("redis:7"));
    assert_eq!(
        svc(&c, "cache").environment["SHARED"],
        "from-main",
        "the including project's variables win"
    );
    assert_eq!(svc(&c, "tool").image.as_deref(), Some("busybox:1"));
}

#[test]
fn the_override_file_merges_as_compose_merges() {
    let c = load_ws(&[
        ("/ws/docker-compose.yml", "services:\n  db:\n    image: postgres:15\n    ports: ['5432:5432']\n    environment: {A: '1'}\n"),
        ("/ws/docker-compose.override.yml", "services:\n  db:\n    image: postgres:16\n    ports: ['15432:5432']\n    environment: [B=2]\n  extra:\n    image: busybox\n"),
    ], &[]);
    let db = svc(&c, "db");
    assert_eq!(db.image.as_deref(), Some("postgres:16"));
    assert_eq!(db.ports.len(), 2);
    assert_eq!(db.environment.len(), 2);
    assert!(c.service("extra").is_some());
}

#[test]
fn compose_profiles_leave_services_out_unless_enabled() {
    let text = "services:\n  db:\n    image: x\n  debug:\n    image: y\n    profiles: [debug]\n";
    let c = load_ws(&[("/ws/compose.yaml", text)], &[]);
    assert!(c.is_active("db") && !c.is_active("debug"));
    let c = load_ws(
        &[("/ws/compose.yaml", text)],
        &[("COMPOSE_PROFILES", "debug,other")],
    );
    assert!(c.is_active("debug"));
    let fs = files(&[("/ws/compose.yaml", text)]);
    let shell = env(&[]);
    let on = vec!["debug".to_string()];
    let c = load(&LoadRequest {
        fs: &fs,
        root: Path::new("/ws"),
        shell: &shell,
        profile_vars: &[],
        compose_profiles: &on,
    })
    .unwrap();
    assert!(c.is_active("debug"));
}

#[test]
fn build_with_context_dockerfile_args_target_and_the_default_image_name() {
    let c = one("services:\n  api:\n    build:\n      context: ./api\n      dockerfile: docker/Dockerfile.dev\n      args:\n        - NODE=20\n      target: dev\n      labels: {a: b}\n      cache_from: [x]\n    pull_policy: build\n  short:\n    build: .\n");
    let api = svc(&c, "api");
    let b = api.build.as_ref().unwrap();
    assert_eq!(b.context, PathBuf::from("/ws/api"));
    assert_eq!(b.dockerfile.as_deref(), Some("docker/Dockerfile.dev"));
    assert_eq!(b.args["NODE"], "20");
    assert_eq!(b.target.as_deref(), Some("dev"));
    assert_eq!(api.pull_policy, "build");
    assert!(api.image.is_none());
    assert!(warnings(&c).iter().any(|w| w.contains("build.cache_from")));
    assert_eq!(
        svc(&c, "short").build.as_ref().unwrap().context,
        PathBuf::from("/ws")
    );
}

#[test]
fn networks_top_level_and_per_service_with_aliases_and_addresses() {
    let c = one("services:\n  a:\n    image: x\n    networks:\n      front:\n        aliases: [web, www]\n        ipv4_address: 172.28.0.10\n      back:\n  b:\n    image: y\n    networks: [back]\n  c:\n    image: z\n    network_mode: host\nnetworks:\n  front:\n    driver: bridge\n    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n  back:\n    internal: true\n  outside:\n    external: true\n    name: corp_net\n");
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let a = svc(&c, "a");
    let front = a.networks.iter().find(|n| n.key == "front").unwrap();
    assert_eq!(front.aliases, vec!["web", "www"]);
    assert_eq!(front.ipv4_address.as_deref(), Some("172.28.0.10"));
    assert_eq!(svc(&c, "b").networks[0].key, "back");
    assert_eq!(svc(&c, "c").network_mode.as_deref(), Some("host"));
    assert!(c.networks["back"].internal);
    assert!(c.networks["outside"].external);
    assert_eq!(c.networks["outside"].name.as_deref(), Some("corp_net"));
    assert_eq!(
        c.networks["front"].ipam[0].subnet.as_deref(),
        Some("172.28.0.0/16")
    );
}

#[test]
fn undeclared_networks_volumes_and_secrets_are_errors_of_the_service() {
    let c = one("services:\n  a:\n    image: x\n    networks: [nope]\n    volumes: ['gone:/data']\n    secrets: [missing]\n");
    let e = errors(&c).join("\n");
    assert!(e.contains("network \"nope\" is not declared"), "{e}");
    assert!(e.contains("named volume \"gone\" is not declared"), "{e}");
    assert!(e.contains("secret \"missing\" is not declared"), "{e}");
}

#[test]
fn secrets_and_configs_mount_where_compose_mounts_them() {
    let c = one("services:\n  a:\n    image: x\n    secrets:\n      - db_pw\n      - source: api_key\n        target: key\n        mode: 0400\n    configs:\n      - conf\n      - source: conf\n        target: /etc/app.conf\nsecrets:\n  db_pw:\n    file: ./secrets/pw.txt\n  api_key:\n    environment: API_KEY\nconfigs:\n  conf:\n    file: ./app.conf\n");
    let a = svc(&c, "a");
    assert_eq!(a.secrets[0].target, "/run/secrets/db_pw");
    assert_eq!(a.secrets[1].target, "/run/secrets/key");
    assert_eq!(a.configs[0].target, "/conf");
    assert_eq!(a.configs[1].target, "/etc/app.conf");
    assert!(errors(&c)
        .iter()
        .any(|e| e.contains("secrets.api_key.environment: names API_KEY, which is not set")));
}

#[test]
fn depends_on_long_form_conditions_required_and_restart() {
    let c = one("services:\n  migrate:\n    image: m\n  db:\n    image: d\n    healthcheck:\n      test: [CMD, 'true']\n  api:\n    image: a\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      migrate:\n        condition: service_completed_successfully\n      metrics:\n        condition: service_started\n        required: false\n");
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let api = svc(&c, "api");
    assert_eq!(
        api.depends_on.len(),
        2,
        "the optional, undefined one is dropped"
    );
    let db = api.dependency("db").unwrap();
    assert_eq!((db.condition, db.restart), (Condition::Healthy, true));
    assert_eq!(
        api.dependency("migrate").unwrap().condition,
        Condition::CompletedSuccessfully
    );
    assert!(warnings(&c)
        .iter()
        .any(|w| w.contains("optional dependency \"metrics\"")));
    assert_eq!(start_order(&c.services), vec!["migrate", "db", "api"]);
}

#[test]
fn dependency_cycles_and_unknown_dependencies() {
    let c = one("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    depends_on: [a]\n  c:\n    image: z\n    depends_on: [ghost]\n  d:\n    image: w\n    depends_on: [c]\n  e:\n    image: v\n");
    let e = errors(&c).join("\n");
    assert!(e.contains("dependency cycle"), "{e}");
    assert!(
        e.contains("services.c.depends_on.ghost: names \"ghost\""),
        "{e}"
    );
    assert!(
        e.contains("services.d.depends_on.c: depends on \"c\", which has errors"),
        "{e}"
    );
    assert_eq!(
        c.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["e"]
    );
}

#[test]
fn restart_values_and_deploy_restart_policy() {
    let c = one("services:\n  a: {image: x, restart: 'no'}\n  b: {image: x, restart: always}\n  c: {image: x, restart: 'on-failure:3'}\n  d: {image: x, restart: unless-stopped}\n  e:\n    image: x\n    deploy:\n      restart_policy: {condition: on-failure, max_attempts: 2}\n  f: {image: x, restart: sometimes}\n");
    let r = |n: &str| c.service(n).and_then(|s| s.restart.clone());
    assert_eq!(r("a").as_deref(), Some("no"));
    assert_eq!(r("c").as_deref(), Some("on-failure:3"));
    assert_eq!(r("e").as_deref(), Some("on-failure:2"));
    assert!(errors(&c)
        .iter()
        .any(|e| e.starts_with("services.f.restart")));
}

#[test]
fn healthcheck_disable_none_start_period_and_start_interval() {
    let c = one("services:\n  a:\n    image: x\n    healthcheck: {disable: true}\n  b:\n    image: x\n    healthcheck: {disable: false, test: 'curl -f localhost', interval: 1m30s, start_period: 5s, start_interval: 500ms, retries: 3}\n  c:\n    image: x\n    healthcheck: {test: [NONE]}\n  d:\n    image: x\n    healthcheck: {interval: 2s}\n");
    assert!(svc(&c, "a").healthcheck.as_ref().unwrap().disabled());
    let b = svc(&c, "b").healthcheck.clone().unwrap();
    assert_eq!(
        b.test,
        Some(vec!["CMD-SHELL".into(), "curl -f localhost".into()])
    );
    assert_eq!(b.interval, Some(Duration::from_secs(90)));
    assert_eq!(b.start_interval, Some(Duration::from_millis(500)));
    assert!(svc(&c, "c").healthcheck.as_ref().unwrap().disabled());
    let d = svc(&c, "d").healthcheck.clone().unwrap();
    assert_eq!((d.test, d.interval), (None, Some(Duration::from_secs(2))));
}

#[test]
fn every_short_and_long_port_form() {
    let p = |s: &str| service::parse_port_short(s).unwrap();
    let m = |ip: Option<&str>, h: Option<u16>, c: u16| PortMapping {
        host_ip: ip.map(str::to_string),
        host_port: h,
        host_port_end: None,
        container_port: c,
        protocol: "tcp".into(),
    };
    assert_eq!(p("3000"), vec![m(None, None, 3000)]);
    assert_eq!(p("8000:80"), vec![m(None, Some(8000), 80)]);
    assert_eq!(
        p("127.0.0.1:8001:8001"),
        vec![m(Some("127.0.0.1"), Some(8001), 8001)]
    );
    assert_eq!(p("127.0.0.1::80"), vec![m(Some("127.0.0.1"), None, 80)]);
    assert_eq!(p("::1:6000:6000"), vec![m(Some("::1"), Some(6000), 6000)]);
    assert_eq!(p("[::1]:6001:6001"), vec![m(Some("::1"), Some(6001), 6001)]);
    assert_eq!(p("3000-3002").len(), 3);
    assert_eq!(p("9090-9091:8080-8081")[1], m(None, Some(9091), 8081));
    assert_eq!(p("8000-8010:80")[0].host_port_end, Some(8010));
    assert_eq!(p("6060:6060/udp")[0].protocol, "udp");
    assert!(service::parse_port_short("9090-9092:8080-8081").is_err());
    assert!(service::parse_port_short("99999:80").is_err());
    let c = one("services:\n  a:\n    image: x\n    ports:\n      - target: 80\n        published: '8080'\n        host_ip: 127.0.0.1\n        protocol: tcp\n        mode: host\n      - target: 443\n      - '5000'\n");
    let a = svc(&c, "a");
    assert_eq!(a.ports[0], m(Some("127.0.0.1"), Some(8080), 80));
    assert_eq!(a.ports[1], m(None, None, 443));
    assert_eq!(a.ports[2], m(None, None, 5000));
}

#[test]
fn every_volume_form_with_flags() {
    let c = one("services:\n  a:\n    image: x\n    volumes:\n      - data:/var/lib/data\n      - ./conf:/etc/conf:ro,z\n      - ./src:/src:Z\n      - ./cache:/cache:cached\n      - /anonymous\n      - data:/nocopy:nocopy\n      - type: tmpfs\n        target: /tmp\n        tmpfs: {size: 64m, mode: 1777}\n      - type: bind\n        source: ./x\n        target: /x\n        read_only: true\n        bind: {selinux: z, create_host_path: false}\n      - type: volume\n        source: data\n        target: /sub\n        volume: {nocopy: true, subpath: a/b}\nvolumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /srv/data}\n");
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let v = &svc(&c, "a").volumes;
    assert_eq!(
        (v[0].kind, v[0].source.as_deref()),
        (MountKind::Volume, Some("data"))
    );
    assert_eq!(
        (v[1].kind, v[1].read_only, v[1].selinux.as_deref()),
        (MountKind::Bind, true, Some("z"))
    );
    assert_eq!(v[1].source.as_deref(), Some("/ws/conf"));
    assert_eq!(v[2].selinux.as_deref(), Some("Z"));
    assert!(!v[3].read_only);
    assert_eq!(
        (v[4].kind, v[4].source.as_deref()),
        (MountKind::Volume, None)
    );
    assert!(v[5].nocopy);
    assert_eq!(
        (v[6].kind, v[6].tmpfs_size),
        (MountKind::Tmpfs, Some(64 << 20))
    );
    assert!(v[7].read_only && !v[7].create_host_path);
    assert_eq!(v[8].subpath.as_deref(), Some("a/b"));
    assert_eq!(c.volumes["data"].driver_opts["device"], "/srv/data");
}

#[test]
fn external_volumes_keep_their_name() {
    let c = one("services:\n  db:\n    image: x\n    volumes: [pgdata:/var/lib/postgresql/data]\nvolumes:\n  pgdata:\n    external: true\n    name: prod_pgdata\n  legacy:\n    external:\n      name: old_name\n");
    assert!(c.volumes["pgdata"].external);
    assert_eq!(c.volumes["pgdata"].name.as_deref(), Some("prod_pgdata"));
    assert_eq!(c.volumes["legacy"].name.as_deref(), Some("old_name"));
}

#[test]
fn long_form_env_file_with_required() {
    let c = one("services:\n  a:\n    image: x\n    env_file:\n      - path: ./default.env\n        required: true\n      - path: ./override.env\n        required: false\n      - plain.env\n");
    let f = &svc(&c, "a").env_files;
    assert_eq!(f.len(), 3);
    assert!(f[0].required && !f[1].required && f[2].required);
    assert_eq!(f[1].path, PathBuf::from("/ws/override.env"));
}

#[test]
fn engine_keys_are_taken_as_they_are() {
    let c = one("services:\n  a:\n    image: x\n    container_name: the-a\n    hostname: h\n    user: '1000:1000'\n    working_dir: /app\n    entrypoint: [tini, --]\n    command: run --fast\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    privileged: true\n    init: true\n    shm_size: 256m\n    ulimits:\n      nproc: 65535\n      nofile: {soft: 20000, hard: 40000}\n    sysctls: [net.core.somaxconn=1024]\n    extra_hosts: ['host.docker.internal:host-gateway', 'db=10.0.0.2']\n    dns: 8.8.8.8\n    tmpfs: [/run, '/tmp:size=64m']\n    read_only: true\n    stop_signal: SIGQUIT\n    stop_grace_period: 1m\n    tty: true\n    stdin_open: true\n    devices: ['/dev/fuse:/dev/fuse:rwm']\n    security_opt: [no-new-privileges:true]\n    pid: host\n    ipc: shareable\n    platform: linux/amd64\n    mem_limit: 1g\n    cpus: '1.5'\n    pids_limit: 100\n    expose: ['3000', '4000-4001/udp']\n    logging:\n      driver: json-file\n      options: {max-size: 10m}\n    deploy:\n      resources:\n        limits: {cpus: '0.5', memory: 512M}\n        reservations: {memory: 128M}\n      placement: {constraints: [node.role==manager]}\n");
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let a = svc(&c, "a");
    let e = &a.engine;
    assert_eq!(a.container_name.as_deref(), Some("the-a"));
    assert_eq!(a.command, Some(vec!["run".into(), "--fast".into()]));
    assert_eq!(e.user.as_deref(), Some("1000:1000"));
    assert_eq!(e.shm_size, Some(256 << 20));
    assert_eq!(e.ulimits.len(), 2);
    assert_eq!(e.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(
        e.extra_hosts,
        vec!["host.docker.internal:host-gateway", "db:10.0.0.2"]
    );
    assert_eq!(e.tmpfs["/tmp"], "size=64m");
    assert_eq!(
        e.nano_cpus,
        Some(500_000_000),
        "deploy limits win over cpus"
    );
    assert_eq!(e.memory, Some(512 << 20));
    assert_eq!(e.memory_reservation, Some(128 << 20));
    assert_eq!(e.expose, vec!["3000/tcp", "4000/udp", "4001/udp"]);
    assert_eq!(a.stop_grace_period, Some(Duration::from_secs(60)));
    assert!(e.init == Some(true) && e.privileged && e.tty && e.read_only);
    assert!(
        warnings(&c).iter().any(|w| w.contains("deploy.placement")),
        "{:?}",
        warnings(&c)
    );
}

#[test]
fn swarm_only_and_unknown_keys() {
    let c = one("services:\n  a:\n    image: x\n    develop: {watch: []}\n    gpus: all\n    deploy: {mode: global, update_config: {parallelism: 2}}\n  b:\n    image: x\n    imagee: typo\n");
    assert!(c.service("a").is_some(), "warnings never refuse a service");
    let w = warnings(&c).join("\n");
    for k in ["gpus", "deploy.mode", "deploy.update_config"] {
        assert!(w.contains(&format!("services.a.{k}")), "{k}: {w}");
    }
    assert!(!w.contains("services.a.develop"), "develop is read: {w}");
    let e = errors(&c).join("\n");
    assert!(e.contains("services.b.imagee: is not a service key of the compose specification (did you mean `image`?)"), "{e}");
}

#[test]
fn every_problem_is_reported_with_its_line_not_just_the_first() {
    let c = one("services:\n  a:\n    image: x\n    ports: ['99999:1']\n    mem_limit: lots\n  b:\n    image: y\n    stop_grace_period: soon\n");
    let lines: Vec<(String, Option<u32>)> = c.errors().map(|d| (d.key.clone(), d.line)).collect();
    assert_eq!(
        lines,
        vec![
            ("services.a.ports[0]".to_string(), Some(4)),
            ("services.a.mem_limit".to_string(), Some(5)),
            ("services.b.stop_grace_period".to_string(), Some(8)),
        ]
    );
}

#[test]
fn broken_yaml_is_one_error_with_its_line_and_no_services() {
    let c = one("services:\n  a:\n    image: [unclosed\n");
    let d = c.errors().next().unwrap();
    assert!(
        d.line.is_some() && d.message.contains("YAML does not parse"),
        "{d:?}"
    );
    assert!(c.names.is_empty());
}

#[test]
fn unknown_top_level_keys_are_errors_of_the_file_and_services_still_list() {
    let c = one("services:\n  a:\n    image: x\nservice:\n  typo: {}\n");
    assert_eq!(c.names, vec!["a"]);
    let d = c.errors().next().unwrap();
    assert_eq!(
        (d.key.as_str(), d.service.as_deref(), d.line),
        ("service", None, Some(4))
    );
    assert!(
        service_error(&c, "a").is_some(),
        "a file-level error stops every service"
    );
}

#[test]
fn replicas_and_scale() {
    let c = one("services:\n  a:\n    image: x\n    deploy: {replicas: 3}\n  b:\n    image: x\n    scale: 2\n  c:\n    image: x\n    container_name: fixed\n    scale: 2\n");
    assert_eq!(svc(&c, "a").replicas, 3);
    assert_eq!(svc(&c, "b").replicas, 2);
    assert!(errors(&c)
        .iter()
        .any(|e| e.contains("services.c.container_name")));
}

#[test]
fn compose_file_lists_the_files_and_its_separator() {
    let fs = files(&[
        ("/ws/base.yml", "services:\n  a:\n    image: x\n"),
        ("/ws/extra.yml", "services:\n  a:\n    image: y\n"),
    ]);
    let shell = env(&[("COMPOSE_FILE", "base.yml:extra.yml")]);
    let c = load(&LoadRequest {
        fs: &fs,
        root: Path::new("/ws"),
        shell: &shell,
        profile_vars: &[],
        compose_profiles: &[],
    })
    .unwrap();
    assert_eq!(svc(&c, "a").image.as_deref(), Some("y"));
}

#[test]
fn a_workspace_without_compose_files_has_no_project() {
    let fs = files(&[]);
    let shell = env(&[]);
    assert!(load(&LoadRequest {
        fs: &fs,
        root: Path::new("/ws"),
        shell: &shell,
        profile_vars: &[],
        compose_profiles: &[]
    })
    .is_none());
}

#[test]
fn develop_watch_rules_as_the_specification_writes_them() {
    let c = one(r#"services:
  web:
    build: ./web
    develop:
      watch:
        - path: ./web/html
          action: sync
          target: /var/www
          ignore:
            - node_modules/
          initial_sync: true
        - path: web/package.json
          action: rebuild
        - action: sync+restart
          path: ./web/conf
          target: /etc/nginx/conf.d
        - path: ./web/src
          action: sync+exec
          target: /src
          include: ["*.js"]
          exec:
            command: kill -HUP 1
        - path: ./web/restart-me
          action: restart
          x-note: extensions are fine
"#);
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let w = &svc(&c, "web").develop;
    assert_eq!(w.len(), 5);
    assert_eq!(w[0].path, std::path::PathBuf::from("/ws/web/html"));
    assert_eq!(
        (w[0].action.as_str(), w[0].target.as_deref()),
        ("sync", Some("/var/www"))
    );
    assert_eq!(
        (w[0].ignore.clone(), w[0].initial_sync),
        (vec!["node_modules/".to_string()], true)
    );
    assert_eq!(
        (w[1].path.to_str(), w[1].action.as_str()),
        (Some("/ws/web/package.json"), "rebuild")
    );
    assert_eq!(w[2].action, "sync+restart");
    assert_eq!(w[3].include, vec!["*.js"]);
    assert_eq!(
        w[3].exec.as_deref(),
        Some(&["kill".to_string(), "-HUP".into(), "1".into()][..])
    );
    assert_eq!(w[4].action, "restart");
}

#[test]
fn develop_watch_problems_are_errors_of_that_service_only() {
    let c = one(r#"services:
  web:
    build: ./web
    develop:
      watch:
        - path: ./src
          action: copy
        - action: sync
          path: ./src
        - path: ./x
          action: sync+exec
          target: /x
        - action: rebuild
        - path: ./y
          action: rebuild
          tagret: /y
      wtach: []
  db:
    image: pg
"#);
    let e = errors(&c).join("\n");
    for want in [
        "services.web.develop.watch[0].action: \"copy\" is not an action",
        "services.web.develop.watch[1].target: is required for `sync`",
        "services.web.develop.watch[2].exec.command: is required for `sync+exec`",
        "services.web.develop.watch[3].path: is required",
        "services.web.develop.watch[4].tagret: is not a watch rule key",
        "services.web.develop.wtach: is not a develop key",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    assert!(c.service("db").is_some(), "the other service is unaffected");
}

#[test]
fn develop_watch_shapes_from_public_files() {
    // The whole project directory, `**` ignores, a relative target.
    let c = one(r#"services:
  api:
    build: .
    develop:
      watch:
        - path: ./
          action: sync+restart
          target: /etc/connector
        - action: sync
          path: ./src
          target: app/src
          ignore:
            - "**/__pycache__"
            - "**/*.pyc"
"#);
    assert!(errors(&c).is_empty(), "{:?}", errors(&c));
    let w = &svc(&c, "api").develop;
    assert_eq!(w[0].path, std::path::PathBuf::from("/ws"));
    assert_eq!(w[1].target.as_deref(), Some("app/src"));
    assert_eq!(w[1].ignore, vec!["**/__pycache__", "**/*.pyc"]);
}
