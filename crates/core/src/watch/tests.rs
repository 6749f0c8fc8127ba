use super::*;

fn graph() -> Graph {
    Graph::parse(
        r#"{"graph": {
          "nodes": {
            "api": {"name": "api", "type": "app", "data": {"root": "apps/api", "targets": {"build": {"outputs": ["{projectRoot}/dist"]}}}},
            "web": {"name": "web", "type": "app", "data": {"root": "apps/web/", "targets": {"build": {"outputs": ["{workspaceRoot}/dist/{projectName}", "{options.outputPath}"], "options": {"outputPath": "out/web"}}}}},
            "admin": {"name": "admin", "type": "app", "data": {"root": "apps/admin", "targets": {}}},
            "shared": {"name": "shared", "type": "lib", "data": {"root": "libs/shared", "targets": {"build": {}}}},
            "util": {"name": "util", "type": "lib", "data": {"root": "libs/util", "targets": {}}},
            "workspace": {"name": "workspace", "type": "app", "data": {"root": ".", "targets": {}}}
          },
          "dependencies": {
            "api": [{"source": "api", "target": "shared", "type": "static"}, {"source": "api", "target": "npm:express", "type": "static"}],
            "web": [{"source": "web", "target": "shared", "type": "static"}],
            "shared": [{"source": "shared", "target": "util", "type": "static"}],
            "util": [], "admin": [], "workspace": []
          }
        }}"#,
    )
    .unwrap()
}

/// api and web (both using the shared library) and admin, watched as their keys say by default.
fn three_apps(g: &Graph) -> Vec<Watched> {
    [
        ("api", "apps/api"),
        ("web", "apps/web"),
        ("admin", "apps/admin"),
    ]
    .iter()
    .map(|(s, d)| watched(g, s, d, &keys(), &BTreeSet::new()).unwrap())
    .collect()
}

fn keys() -> WatchKeys {
    WatchKeys::default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_graph_as_nx_writes_it() {
    let g = graph();
    assert_eq!(
        g.projects["api"].deps,
        vec!["shared"],
        "npm: nodes are not projects"
    );
    assert_eq!(g.projects["web"].root, "apps/web");
    assert_eq!(g.projects["workspace"].root, "");
    assert_eq!(g.projects["api"].outputs, vec!["apps/api/dist"]);
    assert_eq!(g.projects["web"].outputs, vec!["dist/web", "out/web"]);
    assert!(g.projects["shared"].build && !g.projects["util"].build);
    assert!(Graph::parse("not json").is_err());
    assert!(Graph::parse("{}").is_err());
}

#[test]
fn a_file_belongs_to_the_deepest_project_the_root_holds_the_rest() {
    let g = graph();
    assert_eq!(g.owner("apps/api/src/main.js").unwrap().name, "api");
    assert_eq!(g.owner("apps/api").unwrap().name, "api");
    assert_eq!(
        g.owner("apps/apiary/x.js").unwrap().name,
        "workspace",
        "a prefix is not a parent"
    );
    assert_eq!(g.owner("nx.json").unwrap().name, "workspace");
}

#[test]
fn closure_is_the_project_and_its_libraries_transitively() {
    let g = graph();
    let names: Vec<&str> = g.closure("api").iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["api", "shared", "util"]);
    assert_eq!(g.closure("ghost").len(), 0);
}

#[test]
fn a_service_watches_its_project_and_libraries_never_the_whole_root() {
    let g = graph();
    let w = watched(&g, "api", "apps/api", &keys(), &BTreeSet::new()).unwrap();
    assert_eq!(w.project.as_deref(), Some("api"));
    assert_eq!(w.paths, vec!["apps/api", "libs/shared", "libs/util"]);
    assert_eq!(w.delay_ms, DEFAULT_DELAY_MS);
    // A directory no project holds: the directory itself.
    let w = watched(&g, "tool", "./tools/tool/", &keys(), &BTreeSet::new()).unwrap();
    assert_eq!((w.project, w.paths), (None, vec!["tools/tool".to_string()]));
    // A service at the root is the root project: everything (the ignore rules apply).
    let w = watched(&g, "mono", ".", &keys(), &BTreeSet::new()).unwrap();
    assert_eq!(
        (w.project.as_deref(), w.paths),
        (Some("workspace"), vec!["".to_string()])
    );
}

#[test]
fn pm2_watch_keys_mean_what_pm2_says() {
    let app = |v: Value| v.as_object().unwrap().clone();
    let k = WatchKeys::from_app(&app(json!({"watch": false})));
    assert!(k.off);
    assert!(watched(&graph(), "api", "apps/api", &k, &BTreeSet::new()).is_none());
    let k = WatchKeys::from_app(&app(
        json!({"watch": ["src", "./config/"], "ignore_watch": ["*.log", "tmp"], "watch_delay": 1500}),
    ));
    let w = watched(&graph(), "api", "apps/api", &k, &BTreeSet::new()).unwrap();
    assert_eq!(w.paths, vec!["apps/api/config", "apps/api/src"]);
    assert_eq!(
        (w.delay_ms, w.ignore.clone()),
        (1500, vec!["*.log".to_string(), "tmp".to_string()])
    );
    let k = WatchKeys::from_app(&app(
        json!({"watch": "lib", "watch_delay": "300", "ignoreWatch": "x"}),
    ));
    assert_eq!(
        (k.paths, k.delay_ms, k.ignore),
        (vec!["lib".to_string()], Some(300), vec!["x".to_string()])
    );
    let k = WatchKeys::from_app(&app(json!({"watch": true})));
    assert!(!k.off && k.paths.is_empty());
}

#[test]
fn a_change_in_a_library_reaches_exactly_the_services_that_use_it() {
    let g = graph();
    let ws = three_apps(&g);
    let none = |_: &Watched, _: &str| false;
    let r = reach(&ws, &set(&["libs/util/index.js"]), &none);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["api", "web"]);
    let r = reach(&ws, &set(&["apps/admin/src/a.js", "README.md"]), &none);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["admin"]);
    // Its own ignore rules leave a file out for that service only.
    let ignore_in_api = |w: &Watched, f: &str| w.service == "api" && f.ends_with(".log");
    let r = reach(&ws, &set(&["libs/shared/debug.log"]), &ignore_in_api);
    assert_eq!(r.keys().collect::<Vec<_>>(), vec!["web"]);
    assert_eq!(delay(&ws, &r), DEFAULT_DELAY_MS);
}

#[test]
fn the_debounce_is_the_longest_delay_of_what_the_changes_reach() {
    let g = graph();
    let mut slow = watched(&g, "api", "apps/api", &keys(), &BTreeSet::new()).unwrap();
    slow.delay_ms = 2000;
    let fast = watched(&g, "web", "apps/web", &keys(), &BTreeSet::new()).unwrap();
    let ws = vec![slow, fast];
    let none = |_: &Watched, _: &str| false;
    assert_eq!(
        delay(&ws, &reach(&ws, &set(&["libs/shared/a.js"]), &none)),
        2000
    );
    assert_eq!(
        delay(&ws, &reach(&ws, &set(&["apps/web/a.js"]), &none)),
        DEFAULT_DELAY_MS
    );
    let t0: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
    assert!(!due(t0, 200, t0 + chrono::Duration::milliseconds(199)));
    assert!(due(t0, 200, t0 + chrono::Duration::milliseconds(200)));
}

#[test]
fn a_cycle_builds_what_changed_and_reloads_only_what_runs() {
    let g = graph();
    let ws = three_apps(&g);
    let reached: BTreeMap<String, Vec<String>> = [
        ("api".to_string(), vec!["libs/shared/a.js".to_string()]),
        ("web".to_string(), vec!["libs/shared/a.js".to_string()]),
        ("admin".to_string(), vec!["apps/admin/x.js".to_string()]),
    ]
    .into();
    let c = plan(
        &g,
        &ws,
        &reached,
        &BTreeSet::new(),
        &set(&["api", "admin"]),
        &BTreeSet::new(),
    );
    assert_eq!(c.reload, vec!["admin", "api"]);
    assert_eq!(
        c.build,
        vec!["api"],
        "admin has no build target; web does not run"
    );
    assert_eq!(
        c.skipped,
        vec![("web".to_string(), "not running".to_string())]
    );
}

#[test]
fn a_crash_looping_service_waits_for_its_own_source_to_change() {
    let g = graph();
    let ws = vec![watched(&g, "api", "apps/api", &keys(), &BTreeSet::new()).unwrap()];
    let running = set(&["api", "worker"]);
    let looping = set(&["api", "worker"]);
    // Reached only as a cascade (a dependency it restarts with was reloaded): left alone.
    let c = plan(
        &g,
        &ws,
        &BTreeMap::new(),
        &set(&["worker"]),
        &running,
        &looping,
    );
    assert!(c.reload.is_empty());
    assert_eq!(c.skipped[0].0, "worker");
    assert!(c.skipped[0].1.contains("crash loop"));
    // Its own source changed: reloaded (the new code may be the fix).
    let reached: BTreeMap<String, Vec<String>> =
        [("api".to_string(), vec!["apps/api/main.js".to_string()])].into();
    let c = plan(&g, &ws, &reached, &BTreeSet::new(), &running, &looping);
    assert_eq!(
        (c.reload, c.build),
        (vec!["api".to_string()], vec!["api".to_string()])
    );
    // Not looping: a cascade reloads it, without a build of its own.
    let c = plan(
        &g,
        &ws,
        &BTreeMap::new(),
        &set(&["worker"]),
        &running,
        &BTreeSet::new(),
    );
    assert_eq!((c.reload, c.build), (vec!["worker".to_string()], vec![]));
}

fn changed(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("libs/shared/f{i}.js")).collect()
}

#[test]
fn one_summary_line_what_changed_rebuilt_reloaded_and_how_long() {
    let o = Outcome {
        changed: changed(1),
        built: vec!["api".into(), "web".into()],
        build_ms: Some(2140),
        reloaded: vec!["api".into(), "web".into()],
        total_ms: 3600,
        ..Default::default()
    };
    assert_eq!(
        summary(&o),
        "watch: 1 file changed (libs/shared/f0.js) · built api, web (2.1 s) · reloaded api, web · 3.6 s"
    );
    let o = Outcome {
        changed: changed(5),
        restarts: 1,
        reloaded: vec!["api".into()],
        skipped: vec![("web".into(), "not running".into())],
        total_ms: 900,
        ..Default::default()
    };
    assert_eq!(
        summary(&o),
        "watch: 5 files changed (libs/shared/f0.js, libs/shared/f1.js, libs/shared/f2.js and 2 more) · restarted 1 time by newer changes · reloaded api · web skipped (not running) · 0.9 s"
    );
    let o = Outcome {
        changed: vec!["README.md".into()],
        total_ms: 10,
        ..Default::default()
    };
    assert!(summary(&o).contains("nothing reloaded"));
}

#[test]
fn a_failed_build_says_so_and_keeps_the_running_version() {
    let o = Outcome {
        changed: changed(1),
        built: vec!["api".into()],
        build_ms: Some(800),
        build_error: Some("\n  SyntaxError: Unexpected token (3:4)\n    at parse\n".into()),
        failed: vec![("api".into(), format!("{BUILD_FAILED}: see above"))],
        total_ms: 900,
        ..Default::default()
    };
    let line = summary(&o);
    assert!(
        line.contains("build of api FAILED (0.8 s): SyntaxError: Unexpected token (3:4)"),
        "{line}"
    );
    assert!(line.contains("the running version keeps serving"), "{line}");
    let now: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
    let ev = events(&o, now, &BTreeMap::new(), "development");
    assert_eq!(ev[0].1["profile"], "development");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "api");
    assert_eq!(ev[0].1["event"], "watch_build_failed");
    assert!(ev[0].1["error"].as_str().unwrap().contains("SyntaxError"));
    assert_eq!(ev[0].1["time"], "2026-12-03T10:00:00.000Z");
}

#[test]
fn every_service_a_cycle_touched_gets_an_event() {
    let o = Outcome {
        changed: changed(2),
        built: vec!["api".into()],
        reloaded: vec!["api".into()],
        failed: vec![("web".into(), "not ready within 30 s".into())],
        skipped: vec![("worker".into(), "not running".into())],
        total_ms: 1200,
        ..Default::default()
    };
    let now: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
    let profiles: BTreeMap<String, String> = [("api".to_string(), "staging".to_string())].into();
    assert_eq!(
        events(&o, now, &profiles, "development")[0].1["profile"],
        "staging"
    );
    let ev: Vec<(String, String)> = events(&o, now, &profiles, "development")
        .into_iter()
        .map(|(s, e)| (s, e["event"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        ev,
        vec![
            ("api".to_string(), "watch_reloaded".to_string()),
            ("web".to_string(), "watch_reload_failed".to_string()),
            ("worker".to_string(), "watch_skipped".to_string()),
        ]
    );
}

#[test]
fn what_a_restart_did_from_its_json_error() {
    let set: Vec<String> = vec!["api".into(), "web".into(), "worker".into()];
    assert_eq!(reload_result(&set, None), (set.clone(), vec![]));
    let e = json!({"code": "EXIT_START_FAILED", "service": "api", "message": "api did not become ready within 30 s\nNot started, because what they wait on did not come up: worker (waits on api)\nEvery other service of the command was carried out"});
    let (ok, failed) = reload_result(&set, Some(&e));
    assert_eq!(ok, vec!["web"]);
    assert_eq!(
        failed[0],
        (
            "api".to_string(),
            "api did not become ready within 30 s".to_string()
        )
    );
    assert_eq!(
        failed[1],
        (
            "worker".to_string(),
            "not started: waits on api".to_string()
        )
    );
    // A refusal before anything ran: none of them was reloaded.
    let e = json!({"code": "EXIT_PORT_IN_USE", "service": "api", "message": "port 3000 is held"});
    let (ok, failed) = reload_result(&set, Some(&e));
    assert!(ok.is_empty());
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|(_, why)| why == "port 3000 is held"));
}

#[test]
fn a_failed_build_shows_its_error_not_its_stack() {
    let out = "\u{1b}[90m> nx run api:build\u{1b}[39m\n\n/ws/apps/api/src/own.js:1\nmodule.exports = 'x' +;\n                      ^\n\nSyntaxError: Unexpected token ';'\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)\n\n \u{1b}[31mNX\u{1b}[39m   Running target build for project api failed\n";
    let e = build_error(out);
    assert!(
        e.starts_with("/ws/apps/api/src/own.js:1\nmodule.exports"),
        "{e}"
    );
    assert!(e.contains("SyntaxError: Unexpected token ';'"), "{e}");
    assert!(!e.contains("> nx run"), "{e}");
    assert!(e.contains("Running target build for project api failed"));
    assert!(!e.contains('\u{1b}'), "no colours: {e}");
    // No line reads as an error: the end of the output.
    let quiet: String = (0..30).map(|i| format!("line {i}\n")).collect();
    let e = build_error(&quiet);
    assert!(e.starts_with("line 10") && e.ends_with("line 29"), "{e}");
    let o = Outcome {
        changed: changed(1),
        built: vec!["api".into()],
        build_error: Some(
            "src/a.ts(3,1): error TS2322: Type 'string' is not assignable\n    at x".into(),
        ),
        ..Default::default()
    };
    assert!(
        summary(&o).contains("FAILED (0.0 s): src/a.ts(3,1): error TS2322"),
        "{}",
        summary(&o)
    );
}

fn rule(service: &str, path: &str, action: &str, target: Option<&str>) -> DepRule {
    DepRule {
        service: service.into(),
        path: path.into(),
        action: action.into(),
        target: target.map(str::to_string),
        exec: (action == "sync+exec").then(|| vec!["kill".to_string(), "-HUP".into(), "1".into()]),
    }
}

#[test]
fn develop_watch_sync_copies_each_file_to_its_place_in_the_container() {
    let rules = vec![
        rule("web", "web/html", "sync", Some("/var/www/")),
        rule(
            "web",
            "web/nginx.conf",
            "sync+restart",
            Some("/etc/nginx/nginx.conf"),
        ),
        rule("api", "api/src", "sync+exec", Some("/app/src")),
    ];
    let none = |_: &DepRule, _: &str| false;
    let w = dep_work(
        &rules,
        &set(&[
            "web/html/a/index.html",
            "web/nginx.conf",
            "api/src/x.js",
            "web/other",
        ]),
        &none,
    );
    assert_eq!(
        w.sync
            .iter()
            .map(|s| (s.file.as_str(), s.dest.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("api/src/x.js", "/app/src/x.js"),
            ("web/html/a/index.html", "/var/www/a/index.html"),
            ("web/nginx.conf", "/etc/nginx/nginx.conf"),
        ]
    );
    assert_eq!(
        w.restart.keys().collect::<Vec<_>>(),
        vec!["web"],
        "sync+restart restarts after the copy"
    );
    assert_eq!(
        w.exec,
        vec![(
            "api".to_string(),
            vec!["kill".to_string(), "-HUP".into(), "1".into()]
        )]
    );
    // Ignored for that rule: nothing.
    let skip_html = |r: &DepRule, f: &str| r.path == "web/html" && f.ends_with(".html");
    let w = dep_work(&rules, &set(&["web/html/a/index.html"]), &skip_html);
    assert_eq!(w, DepWork::default());
}

#[test]
fn develop_watch_rebuild_replaces_the_syncs_of_that_service() {
    let rules = vec![
        rule("web", "web/src", "sync", Some("/src")),
        rule("web", "web/package.json", "rebuild", None),
        rule("db", "db/init", "sync", Some("/docker-entrypoint-initdb.d")),
    ];
    let none = |_: &DepRule, _: &str| false;
    let w = dep_work(
        &rules,
        &set(&["web/src/a.js", "web/package.json", "db/init/1.sql"]),
        &none,
    );
    assert_eq!(
        w.restart.get("web"),
        Some(&vec!["web/package.json".to_string()])
    );
    assert_eq!(
        w.sync.len(),
        1,
        "the rebuilt image has web's files: {:?}",
        w.sync
    );
    assert_eq!(w.sync[0].service, "db");
    // A service with a rebuild rule that is not triggered: its sync+restart copies first.
    let rules = vec![
        rule("web", "web/package.json", "rebuild", None),
        rule("web", "web/conf", "sync+restart", Some("/etc/web")),
    ];
    let w = dep_work(&rules, &set(&["web/conf/a.conf"]), &none);
    assert_eq!((w.sync.len(), w.restart.len()), (1, 1), "{w:?}");
    let o = Outcome {
        changed: vec!["db/init/1.sql".into()],
        synced: vec![("db".into(), 1)],
        total_ms: 300,
        ..Default::default()
    };
    assert_eq!(
        summary(&o),
        "watch: 1 file changed (db/init/1.sql) · synced db (1 file) · 0.3 s"
    );
}

#[test]
fn the_graph_is_not_followed_into_another_service() {
    // web waits on api (an edge the plugin adds for dependsOn): api's code is not web's source.
    let mut g = graph();
    g.projects.get_mut("web").unwrap().deps.push("api".into());
    let services = set(&["api", "web"]);
    let w = watched(&g, "web", "apps/web", &keys(), &services).unwrap();
    assert_eq!(w.paths, vec!["apps/web", "libs/shared", "libs/util"]);
    // Without the services named, the edge is followed (what the graph alone says).
    let w = watched(&g, "web", "apps/web", &keys(), &BTreeSet::new()).unwrap();
    assert!(w.paths.contains(&"apps/api".to_string()));
}

#[test]
fn develop_watch_of_the_whole_project_directory() {
    // `path: ./` with `target: /etc/connector`, a shape public compose files use.
    let rules = vec![rule("conn", "", "sync+restart", Some("/etc/connector"))];
    let none = |_: &DepRule, _: &str| false;
    let w = dep_work(&rules, &set(&["config.json", "sub/a.yaml"]), &none);
    assert_eq!(
        w.sync.iter().map(|s| s.dest.as_str()).collect::<Vec<_>>(),
        vec!["/etc/connector/config.json", "/etc/connector/sub/a.yaml"]
    );
    assert!(w.restart.contains_key("conn"));
}
