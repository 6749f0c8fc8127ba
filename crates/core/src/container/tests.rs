use super::*;

fn compose(text: &str) -> ComposeFile {
    let vars: BTreeMap<&str, &str> = [("PGPASS", "secret"), ("PGPORT", "15432")].into();
    crate::compose::from_text(text, Path::new("/ws/docker-compose.yml"), &|k| {
        vars.get(k).map(|v| v.to_string())
    })
}

const TEXT: &str = r#"
services:
  postgres:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${PGPASS}
      SHARED: from-environment
    ports: ["${PGPORT}:5432"]
    volumes:
      - pgdata:/var/lib/postgresql/data
      - ./init:/docker-entrypoint-initdb.d:ro
      - /scratch
      - type: bind
        source: ./certs
        target: /certs
        read_only: true
        bind: {create_host_path: false}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
      interval: 1s
      retries: 30
    labels: { team: data }
    stop_grace_period: 20s
    secrets: [pw]
  zitadel:
    image: ghcr.io/zitadel/zitadel:v2
    container_name: my-zitadel
    depends_on: { postgres: { condition: service_healthy }, init: { condition: service_completed_successfully } }
    networks: { back: { aliases: [auth] }, default: {} }
    pid: "service:postgres"
  init:
    build: ./init
    network_mode: "service:zitadel"
volumes:
  pgdata:
    external: true
    name: prod_pgdata
networks:
  back: { internal: true }
secrets:
  pw: { file: ./pw.txt }
"#;

fn build(c: &ComposeFile, name: &str) -> ContainerSpec {
    spec(SpecInput {
        workspace_root: Path::new("/ws"),
        workspace_name: "@acme/Shop",
        profile: "staging",
        compose: c,
        service: c.service(name).unwrap(),
        env_file_vars: vec![
            ("SHARED".into(), "from-file".into()),
            ("ONLY_FILE".into(), "1".into()),
        ],
        health_timeout_seconds: None,
        replica: 1,
    })
}

#[test]
fn spec_carries_compose_and_our_labels_names_and_mounts() {
    let c = compose(TEXT);
    assert!(c.errors().next().is_none(), "{:?}", c.diags);
    let s = build(&c, "postgres");
    assert_eq!(s.project, "acme-shop");
    assert_eq!(s.name, "acme-shop-postgres-1");
    assert_eq!(s.networks[0].name, "acme-shop_default");
    assert_eq!(s.networks[0].aliases, vec!["postgres"]);
    assert_eq!(s.labels[COMPOSE_PROJECT], "acme-shop");
    assert_eq!(s.labels[COMPOSE_SERVICE], "postgres");
    assert_eq!(s.labels[LABEL_WORKSPACE], "/ws");
    assert_eq!(s.labels[LABEL_PROFILE], "staging");
    assert_eq!(s.labels["team"], "data");
    assert_eq!(
        s.env,
        vec![
            "ONLY_FILE=1",
            "POSTGRES_PASSWORD=secret",
            "SHARED=from-environment"
        ]
    );
    assert_eq!(s.ports[0].host_port, Some(15432));
    assert_eq!(
        s.binds,
        vec![
            "/ws/init:/docker-entrypoint-initdb.d:ro",
            "/ws/pw.txt:/run/secrets/pw:ro"
        ]
    );
    assert_eq!(
        (s.volumes[0].name.as_str(), s.volumes[0].external),
        ("prod_pgdata", true),
        "an external volume keeps its name"
    );
    assert_eq!(s.anonymous, vec!["/scratch"]);
    assert_eq!(
        s.bind_mounts,
        vec![BindMount {
            source: "/ws/certs".into(),
            target: "/certs".into(),
            read_only: true,
            propagation: None
        }],
        "a bind whose path must exist is a mount (the engine refuses a missing path)"
    );
    assert_eq!(s.stop_timeout_seconds, 20);
    assert_eq!(s.health_timeout_seconds, 90);
    let h = s.healthcheck.as_ref().unwrap();
    assert_eq!(h.interval_ns, Some(1_000_000_000));
    assert_eq!(h.retries, Some(30));
    assert!(s.has_healthcheck(false));
    let z = build(&c, "zitadel");
    assert_eq!(z.name, "my-zitadel");
    assert!(!z.has_healthcheck(false) && z.has_healthcheck(true));
    assert_eq!(z.stop_timeout_seconds, DEFAULT_STOP_SECONDS);
    assert_eq!(
        z.networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        vec!["acme-shop_back", "acme-shop_default"]
    );
    assert_eq!(z.networks[0].aliases, vec!["zitadel", "auth"]);
    assert!(z.networks[0].internal);
    assert_eq!(
        z.engine.pid.as_deref(),
        Some("container:acme-shop-postgres-1")
    );
    assert_eq!(z.completes_before, vec!["init"]);
    let i = build(&c, "init");
    assert_eq!(
        i.image, "acme-shop-init",
        "a built image is named after project and service"
    );
    assert_eq!(i.network_mode.as_deref(), Some("container:my-zitadel"));
    assert!(i.networks.is_empty());
    assert!(is_one_shot(&c, "init") && !is_one_shot(&c, "postgres"));
}

#[test]
fn hash_follows_identity_not_wait_limit() {
    let c = compose(TEXT);
    let a = build(&c, "postgres");
    let mut b = a.clone();
    b.health_timeout_seconds = 5;
    assert_eq!(a.config_hash(), b.config_hash());
    b.env.push("X=1".into());
    assert_ne!(a.config_hash(), b.config_hash());
    assert_eq!(a.container_labels()[LABEL_HASH], a.config_hash());
    let json = serde_json::to_string(&a).unwrap();
    let back: ContainerSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn dependency_closure_and_gates() {
    let c = compose(TEXT);
    let order = crate::compose::start_order(&c.services);
    assert_eq!(order, vec!["postgres", "init", "zitadel"]);
    assert_eq!(
        with_dependencies(&c, &["zitadel".into()], &order),
        vec!["postgres", "init", "zitadel"]
    );
    assert_eq!(
        with_dependencies(&c, &["postgres".into()], &order),
        vec!["postgres"]
    );
    assert!(gates(&c, "postgres"));
    assert!(!gates(&c, "zitadel"));
}

#[test]
fn replicas_are_numbered_as_compose_numbers_them() {
    let c = compose("services:\n  web:\n    image: x\n    deploy: {replicas: 3}\n");
    let s = build(&c, "web");
    assert_eq!(s.replicas, 3);
    let names: Vec<String> = s.replicas().iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        names,
        vec!["acme-shop-web-1", "acme-shop-web-2", "acme-shop-web-3"]
    );
    assert_eq!(s.replica(2).labels[COMPOSE_NUMBER], "2");
    assert_ne!(s.replica(2).config_hash(), s.replica(3).config_hash());
    let one = build(&compose("services:\n  db: {image: x}\n"), "db");
    assert_eq!(one.replicas().len(), 1);
    assert_eq!(one.replica(1), one);
}

#[test]
fn restart_true_cascades_to_dependents_transitively() {
    let c = compose("services:\n  db: {image: x}\n  api:\n    image: x\n    depends_on: {db: {condition: service_started, restart: true}}\n  worker:\n    image: x\n    depends_on: {api: {condition: service_started, restart: true}}\n  report:\n    image: x\n    depends_on: [db]\n");
    assert_eq!(restart_cascade(&c, &["db".into()]), vec!["api", "worker"]);
    assert_eq!(restart_cascade(&c, &["api".into()]), vec!["worker"]);
    assert!(restart_cascade(&c, &["report".into()]).is_empty());
}
