//! Task definitions compared by meaning: ECS echoes a registered definition back with read-only
//! fields and defaults filled in (`cpu: 0`, `essential: true`, empty lists, `protocol: tcp`,
//! `hostPort` = `containerPort`), so two definitions are the same revision when their
//! normalized forms are equal.

use protect::embed::READ_ONLY_FIELDS;
use serde_json::{Map, Value};

/// The RegisterTaskDefinition input equivalent to a described `taskDefinition` object.
pub fn register_input(described: &Value) -> Value {
    let mut out = described.clone();
    if let Some(map) = out.as_object_mut() {
        for field in READ_ONLY_FIELDS {
            map.remove(field);
        }
    }
    out
}

/// The comparable form of a task definition (described or register input); tags are not part
/// of a revision's content and are ignored.
pub fn normalized(definition: &Value) -> Value {
    let mut out = register_input(definition);
    if let Some(map) = out.as_object_mut() {
        map.remove("tags");
        if let Some(Value::Array(containers)) = map.get_mut("containerDefinitions") {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                normalize_container(container);
            }
        }
    }
    prune(out).unwrap_or(Value::Null)
}

/// Whether two definitions register the same revision content.
pub fn same_definition(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}

fn normalize_container(container: &mut Map<String, Value>) {
    if container.get("cpu").and_then(Value::as_i64) == Some(0) {
        container.remove("cpu");
    }
    if container.get("essential") == Some(&Value::Bool(true)) {
        container.remove("essential");
    }
    if let Some(Value::Array(ports)) = container.get_mut("portMappings") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("protocol").and_then(Value::as_str) == Some("tcp") {
                port.remove("protocol");
            }
            if port.get("hostPort").is_some() && port.get("hostPort") == port.get("containerPort") {
                port.remove("hostPort");
            }
        }
    }
    for list in ["environment", "secrets"] {
        if let Some(Value::Array(items)) = container.get_mut(list) {
            items.sort_by(|a, b| {
                let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
                name(a).cmp(&name(b))
            });
        }
    }
}

/// Drops nulls, empty arrays and empty objects, recursively. `None` when nothing is left.
fn prune(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(prune).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn described_defaults_equal_the_register_input() {
        let input = json!({
            "family": "web",
            "containerDefinitions": [{
                "name": "app", "image": "nginx", "command": null,
                "portMappings": [{"containerPort": 80}],
                "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
            }],
            "volumes": [], "cpu": "256", "memory": "512", "tags": [{"key": "k", "value": "v"}]
        });
        let described = json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE",
            "containerDefinitions": [{
                "name": "app", "image": "nginx", "cpu": 0, "essential": true,
                "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "mountPoints": [], "volumesFrom": [], "systemControls": []
            }],
            "volumes": [], "cpu": "256", "memory": "512",
            "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
            "compatibilities": ["EC2", "FARGATE"], "registeredAt": 1.7e9
        });
        assert!(same_definition(&input, &described));
    }

    #[test]
    fn a_changed_field_is_a_different_definition() {
        let a =
            json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1"}]});
        let b =
            json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:2"}]});
        assert!(!same_definition(&a, &b));
        let c = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1", "essential": false}]});
        assert!(!same_definition(&a, &c));
        let d = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1",
            "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]});
        let e = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1",
            "portMappings": [{"containerPort": 80}]}]});
        assert!(!same_definition(&d, &e));
    }

    #[test]
    fn register_input_drops_only_read_only_fields() {
        let described = json!({"taskDefinitionArn": "x", "revision": 2, "family": "f",
            "status": "ACTIVE", "cpu": "256", "registeredBy": "me"});
        assert_eq!(
            register_input(&described),
            json!({"family": "f", "cpu": "256"})
        );
    }
}
