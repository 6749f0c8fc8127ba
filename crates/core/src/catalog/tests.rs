use super::*;
use serde_json::json;

fn catalog(eco: Value, cfg: PluginConfig) -> Result<Catalog> {
    build(
        Path::new("/ws"),
        "example",
        Path::new("/ws/ecosystem.config.js"),
        &eco,
        cfg,
        None,
    )
}

fn eco() -> Value {
    json!({"apps": [
        {"name": "admin", "script": "vite.js", "cwd": "apps/admin",
         "env": {"NODE_ENV": "development", "PORT": "5173"}, "env_staging": {"NODE_ENV": "staging"}},
        {"name": "server", "script": "main.js", "cwd": "apps/server", "exec_mode": "cluster", "instances": 2,
         "env": {"PORT": "3000"}}
    ]})
}

#[test]
fn builds_apps_with_kind_cwd_and_mode() {
    let c = catalog(eco(), PluginConfig::default()).unwrap();
    assert_eq!(c.names(), vec!["admin", "server"]);
    assert_eq!(c.services[0].kind, Kind::App);
    assert_eq!(c.services[0].cwd, PathBuf::from("/ws/apps/admin"));
    assert!(!c.services[0].cluster);
    assert!(c.services[1].cluster);
}

#[test]
fn ecosystem_errors_name_the_key() {
    let cases = [
        (json!({"apps": [{"script": "x"}]}), "apps[0].name"),
        (json!({"apps": [{"name": "a"}]}), "apps[0].script"),
        (
            json!({"apps": [{"name": "a", "script": "x"}, {"name": "a", "script": "y"}]}),
            "apps[1].name",
        ),
        (
            json!({"apps": [{"name": "../a", "script": "x"}]}),
            "apps[0].name",
        ),
        (
            json!({"apps": [{"name": "a", "script": "x", "env_staging": "oops"}]}),
            "apps[0].env_staging",
        ),
        (json!({"apps": 3}), "apps"),
        (json!(7), "(module)"),
    ];
    for (value, key) in cases {
        let err = parse_ecosystem(&value, Path::new("/ws/ecosystem.config.js")).unwrap_err();
        assert!(err.message().contains(key), "{key}: {}", err.message());
        assert_eq!(err.exit_code(), crate::exit::ExitCode::Usage);
    }
}

#[test]
fn a_broken_app_is_kept_with_its_problems_and_the_others_are_untouched() {
    let c = catalog(
        json!({"apps": [{"name": "a", "env_staging": "oops"}, {"name": "b", "script": "b.js"}, {"script": "nameless"}]}),
        PluginConfig::default(),
    )
    .unwrap();
    assert_eq!(c.names(), vec!["a", "b"]);
    let e = c.app_error(c.get("a").unwrap()).unwrap();
    assert!(
        e.message().contains("apps[0].script") && e.message().contains("apps[0].env_staging"),
        "{}",
        e.message()
    );
    assert!(c.app_error(c.get("b").unwrap()).is_none());
    let (_, problems) = parse_ecosystem_lenient(
        &json!({"apps": [{"name": "a", "env_staging": "oops"}, {"script": "nameless"}]}),
        Path::new("/ws/ecosystem.config.js"),
    )
    .unwrap();
    assert_eq!(
        problems.len(),
        3,
        "every problem: two of a, the nameless app"
    );
}

#[test]
fn selection_explicit_default_and_all() {
    let cfg = PluginConfig {
        default_services: Some(vec!["server".into()]),
        ..Default::default()
    };
    let c = catalog(eco(), cfg).unwrap();
    let names = |v: Vec<&ServiceSpec>| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(c.select(&[], false).unwrap()), vec!["server"]);
    assert_eq!(names(c.select(&[], true).unwrap()), vec!["admin", "server"]);
    assert_eq!(
        names(c.select(&["admin".into(), "admin".into()], false).unwrap()),
        vec!["admin"]
    );
    let err = c.select(&["nope".into()], false).unwrap_err();
    let a = err.actionable("orchestrator start nope");
    assert_eq!((a.code.as_str(), a.exit_code), ("EXIT_SERVICE_UNKNOWN", 11));
    assert!(a.message.contains("admin, server"), "{}", a.message);
    assert_eq!(
        c.select(&["../x".into()], false).unwrap_err().exit_code(),
        crate::exit::ExitCode::Usage
    );
}

#[test]
fn default_services_must_exist() {
    let cfg = PluginConfig {
        default_services: Some(vec!["ghost".into()]),
        ..Default::default()
    };
    let err = catalog(eco(), cfg).unwrap_err();
    assert!(
        err.message().contains("defaultServices"),
        "{}",
        err.message()
    );
}

#[test]
fn pm2_app_carries_env_metadata_and_log_paths() {
    let c = catalog(eco(), PluginConfig::default()).unwrap();
    let admin = &c.services[0];
    let env = resolve_env(
        admin,
        "staging",
        vec![("API_URL".into(), "http://x".into())],
        Path::new("/ws/config/env/staging.env"),
    );
    let app = pm2_app(&c, admin, "staging", &env);
    assert_eq!(app["env"]["NODE_ENV"], "staging");
    assert_eq!(app["env"]["PORT"], "5173");
    assert_eq!(app["env"]["API_URL"], "http://x");
    assert_eq!(app["env"][META_WORKSPACE], "/ws");
    assert_eq!(app["env"][META_PROFILE], "staging");
    assert_eq!(app["env"][META_KIND], "app");
    assert_eq!(app["cwd"], "/ws/apps/admin");
    assert_eq!(app["namespace"], "example");
    assert_eq!(app["out_file"], "/ws/apps/logs/admin/out.log");
    assert!(app.get("env_staging").is_none());
    assert_eq!(declared_ports(admin, &env), vec![5173]);
    assert_eq!(app["log_date_format"], LOG_DATE_FORMAT);
    assert_eq!(app["merge_logs"], true, "one file per stream by default");
    assert_eq!(app["autorestart"], false);
    assert_eq!(app["watch"], false, "our watcher, never PM2's");
}

#[test]
fn pm2_never_watches_an_entry_that_asks_our_watcher_does() {
    let mut e = eco();
    let admin = e["apps"][0].as_object_mut().unwrap();
    admin.insert("watch".into(), serde_json::json!(["src"]));
    admin.insert("ignore_watch".into(), serde_json::json!(["*.log"]));
    admin.insert("watch_delay".into(), serde_json::json!(500));
    admin.insert(
        "watch_options".into(),
        serde_json::json!({"usePolling": true}),
    );
    let c = catalog(e, PluginConfig::default()).unwrap();
    let admin = &c.services[0];
    let env = resolve_env(
        admin,
        "staging",
        vec![],
        Path::new("/ws/config/env/staging.env"),
    );
    let app = pm2_app(&c, admin, "staging", &env);
    assert_eq!(app["watch"], false);
    for k in ["ignore_watch", "watch_delay", "watch_options"] {
        assert!(app.get(k).is_none(), "{k} reaches PM2");
    }
    let keys = crate::watch::WatchKeys::from_app(&admin.app);
    assert_eq!(
        (keys.paths, keys.delay_ms),
        (vec!["src".to_string()], Some(500))
    );
}

#[test]
fn runner_app_carries_the_spec_and_waits_out_the_stop_timeout() {
    let text = "services:\n  db:\n    image: pg:1\n    stop_grace_period: 20s\n";
    let compose = crate::compose::from_text(text, Path::new("/ws/compose.yaml"), &|_| None);
    let c = build(
        Path::new("/ws"),
        "example",
        Path::new("/ws/ecosystem.config.js"),
        &eco(),
        PluginConfig::default(),
        Some(compose.clone()),
    )
    .unwrap();
    assert_eq!(c.names(), vec!["admin", "server", "db"]);
    let db = c.get("db").unwrap();
    assert_eq!(db.kind, Kind::Dependency);
    let spec = crate::container::spec(crate::container::SpecInput {
        workspace_root: Path::new("/ws"),
        workspace_name: "example",
        profile: "staging",
        compose: &compose,
        service: &compose.services[0],
        env_file_vars: vec![],
        health_timeout_seconds: None,
        replica: 1,
    });
    let app = runner_app(&c, db, "staging", &spec, Path::new("/pkg/lib/runner.js"));
    assert_eq!(app["script"], "/pkg/lib/runner.js");
    assert_eq!(app["exec_mode"], "fork");
    assert_eq!(app["kill_timeout"], 25000);
    assert_eq!(app["autorestart"], false, "the agent restarts it, not PM2");
    assert_eq!(app["env"][META_KIND], "dependency");
    assert_eq!(app["env"][META_PROFILE], "staging");
    let back: crate::container::ContainerSpec =
        serde_json::from_str(app["env"][META_CONTAINER].as_str().unwrap()).unwrap();
    assert_eq!(back, spec);
    assert_eq!(
        app["out_file"], "/dev/null",
        "the runner writes its files itself"
    );
    assert_eq!(
        app["env"][crate::layout::OUT_ENV],
        "/ws/apps/logs/db/out.log"
    );
    assert_eq!(
        app["env"][crate::layout::ERR_ENV],
        "/ws/apps/logs/db/error.log"
    );
    // A compose service may not reuse an app's name.
    let clash = "services:\n  admin:\n    image: x\n";
    let err = build(
        Path::new("/ws"),
        "example",
        Path::new("/ws/ecosystem.config.js"),
        &eco(),
        PluginConfig::default(),
        Some(crate::compose::from_text(
            clash,
            Path::new("/ws/compose.yaml"),
            &|_| None,
        )),
    )
    .unwrap_err();
    assert!(
        err.message().contains("services.admin"),
        "{}",
        err.message()
    );
}

#[test]
fn a_variable_we_no_longer_set_is_unset_however_long_ago_it_was_dropped() {
    let mut app = serde_json::json!({ "env": { "PORT": "3000", "LOG_LEVEL": "info" } });
    unset_stale(
        &mut app,
        crate::pm2::LaunchedEnv {
            keys: vec!["PORT".into(), "DEBUG_SQL".into()],
            unset: vec!["OLD_FLAG".into(), "PORT".into()],
        },
    );
    assert_eq!(app["env"][META_ENV_KEYS], "LOG_LEVEL,PORT");
    assert_eq!(app["env"][META_UNSET], "DEBUG_SQL,OLD_FLAG");
    // A first launch: nothing to unset, the keys recorded for the next one.
    let mut fresh = serde_json::json!({ "env": { "A": "1" } });
    unset_stale(&mut fresh, Default::default());
    assert_eq!(fresh["env"][META_ENV_KEYS], "A");
    assert!(fresh["env"].get(META_UNSET).is_none());
}

#[test]
fn implicit_dependencies_that_are_services_are_waits() {
    let services: Vec<String> = ["api", "db", "cache", "search-a", "search-b", "web"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let waits = |json: &str| implicit_services(json, &services, "api");
    // Names, `*` patterns and `!` exclusions, as Nx reads them; libraries are not services;
    // the project itself never waits on itself; the catalog's order.
    assert_eq!(
        waits(r#"{"implicitDependencies": ["shared-lib", "search-*", "!search-b", "db", "api"]}"#),
        Some(vec!["db".to_string(), "search-a".to_string()])
    );
    assert_eq!(
        waits(r#"{"implicitDependencies": ["*", "!web"]}"#),
        Some(vec![
            "db".into(),
            "cache".into(),
            "search-a".into(),
            "search-b".into()
        ])
    );
    // Nothing that is a service, no list, or not JSON: nothing declared.
    assert_eq!(waits(r#"{"implicitDependencies": ["shared-lib"]}"#), None);
    assert_eq!(waits(r#"{"name": "api"}"#), None);
    assert_eq!(waits("not json"), None);
    assert!(nx_pattern_matches("a*b*c", "axxbyyc"));
    assert!(!nx_pattern_matches("a*b*c", "axxcyyb"));
    assert!(!nx_pattern_matches("ab*ba", "aba"));
}
