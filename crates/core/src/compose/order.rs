//! What the rest of the crate asks of a loaded project: a service's blocking problems, the start
//! order, the names.

use super::model::*;
use crate::error::Error;

/// The error that stops `name` from starting, if any: every one of its problems at once.
pub fn service_error(c: &ComposeFile, name: &str) -> Option<Error> {
    let errs = c.errors_for(name);
    if errs.is_empty() {
        return None;
    }
    Some(Error::Compose {
        service: Some(name.to_string()),
        problems: errs.into_iter().cloned().collect(),
    })
}

/// Pure: dependencies before dependents, in file order otherwise (over services that loaded).
pub fn start_order(services: &[ComposeService]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    fn visit(name: &str, services: &[ComposeService], order: &mut Vec<String>, depth: usize) {
        if order.iter().any(|o| o == name) || depth > services.len() {
            return;
        }
        let Some(svc) = services.iter().find(|s| s.name == name) else {
            return;
        };
        for d in &svc.depends_on {
            visit(&d.name, services, order, depth + 1);
        }
        if !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
    }
    for s in services {
        visit(&s.name, services, &mut order, 0);
    }
    order
}

/// The service names of a project (broken ones too), for the catalog.
pub fn names(c: &ComposeFile) -> Vec<String> {
    c.names.clone()
}
