//! The CEL expressions of the Kubernetes documentation, with the results the
//! documentation gives them, evaluated by Palisade's CEL environment.
//!
//! Sources:
//! - <https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/>
//!   (the policies of the page: replica limits, parameters, match
//!   conditions, variables, message expressions);
//! - <https://kubernetes.io/docs/reference/using-api/cel/> (the examples of
//!   each Kubernetes library: lists, regex, URLs, quantity, IP/CIDR,
//!   format, sets, strings, optionals).
//!
//! The objects are built here to give each expression both outcomes.

use palisade::cel::{EvalError, Expression, Inputs, Variables};
use serde_json::{Value, json};

fn compile(source: &str, variables: &Variables) -> Expression {
    Expression::compile(source, variables).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn inputs(object: Value, params: Option<Value>, namespace: Option<Value>) -> Inputs {
    Inputs {
        object: Some(object),
        params,
        namespace_object: namespace,
        request: Some(json!({
            "operation": "CREATE",
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        })),
        ..Inputs::default()
    }
}

fn verdict(source: &str, object: Value) -> bool {
    compile(source, &Variables::default())
        .evaluate_bool(&inputs(object, None, None))
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn deployment(replicas: i64, labels: Value, images: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": labels},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": images.iter().enumerate()
                .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
                .collect::<Vec<_>>()}},
        },
    })
}

#[test]
fn the_replica_limit_policies() {
    // demo-policy.example.com
    let rule = "object.spec.replicas <= 5";
    assert!(verdict(rule, deployment(3, json!({}), &["nginx"])));
    assert!(!verdict(rule, deployment(6, json!({}), &["nginx"])));

    // replicalimit-policy.example.com, with parameters and a message.
    let variables = Variables::default();
    let rule = compile("object.spec.replicas <= params.maxReplicas", &variables);
    let message = compile(
        "'object.spec.replicas must be no greater than ' + string(params.maxReplicas)",
        &variables,
    );
    let params = json!({"maxReplicas": 3});
    let over = inputs(
        deployment(5, json!({}), &["nginx"]),
        Some(params.clone()),
        None,
    );
    assert_eq!(rule.evaluate_bool(&over), Ok(false));
    assert_eq!(
        message.evaluate_string(&over).unwrap(),
        "object.spec.replicas must be no greater than 3"
    );
    let within = inputs(deployment(2, json!({}), &["nginx"]), Some(params), None);
    assert_eq!(rule.evaluate_bool(&within), Ok(true));
}

#[test]
fn the_match_conditions() {
    let variables = Variables::default();
    let conditions = [
        (
            "!(request.resource.group == 'coordination.k8s.io' && request.resource.resource == 'leases')",
            true,
        ),
        ("!('system:nodes' in request.userInfo.groups)", true),
        (
            "request.resource.group != 'rbac.authorization.k8s.io'",
            true,
        ),
        (
            "request.resource.group == 'rbac.authorization.k8s.io'",
            false,
        ),
    ];
    let given = inputs(deployment(1, json!({}), &["nginx"]), None, None);
    for (source, expected) in conditions {
        assert_eq!(
            compile(source, &variables).evaluate_bool(&given),
            Ok(expected),
            "{source}"
        );
    }
}

#[test]
fn the_variable_composition_policy() {
    // image-matches-namespace-environment.policy.example.com
    let mut variables = Variables::default();
    variables
        .declare(
            "environment",
            "'environment' in namespaceObject.metadata.labels ? namespaceObject.metadata.labels['environment'] : 'prod'",
        )
        .unwrap();
    variables
        .declare(
            "exempt",
            "has(object.metadata.labels) && 'exempt' in object.metadata.labels && object.metadata.labels['exempt'] == 'true'",
        )
        .unwrap();
    variables
        .declare("containers", "object.spec.template.spec.containers")
        .unwrap();
    variables
        .declare(
            "containersToCheck",
            "variables.containers.filter(c, c.image.contains('example.com/'))",
        )
        .unwrap();
    let rule = compile(
        "variables.exempt || variables.containersToCheck.all(c, c.image.startsWith(variables.environment + '.'))",
        &variables,
    );
    let message = compile(
        "'only ' + variables.environment + ' images are allowed in namespace ' + namespaceObject.metadata.name",
        &variables,
    );
    let staging = json!({"metadata": {"name": "shop", "labels": {"environment": "staging"}}});
    let case = |labels: Value, image: &str| {
        inputs(deployment(1, labels, &[image]), None, Some(staging.clone()))
    };
    assert_eq!(
        rule.evaluate_bool(&case(json!({}), "staging.example.com/app")),
        Ok(true)
    );
    let wrong = case(json!({}), "prod.example.com/app");
    assert_eq!(rule.evaluate_bool(&wrong), Ok(false));
    assert_eq!(
        message.evaluate_string(&wrong).unwrap(),
        "only staging images are allowed in namespace shop"
    );
    assert_eq!(
        rule.evaluate_bool(&case(json!({"exempt": "true"}), "prod.example.com/app")),
        Ok(true)
    );
    assert_eq!(
        rule.evaluate_bool(&case(json!({}), "docker.io/app")),
        Ok(true),
        "images of other registries are not checked"
    );
}

#[test]
fn the_validation_expression_examples() {
    let object = json!({
        "minReplicas": 1, "replicas": 3, "maxReplicas": 5,
        "stateCounts": {"Available": 2},
        "list1": [], "list2": [1],
        "map1": {"MY_KEY": "abc"},
        "envars": [{"name": "MY_ENV", "value": "abc"}, {"name": "OTHER", "value": "1"}],
        "health": "ok: all good",
        "widgets": [{"key": "x", "foo": 3}],
        "metadata": {"name": "pre-thing"},
        "prefix": "pre",
        "set1": [1, 2], "set2": [3],
        "names": ["a", "b"], "details": {"a": 1, "b": 2},
        "clusters": [{"name": "one"}, {"name": "two"}], "primary": "one",
    });
    for expression in [
        "object.minReplicas <= object.replicas && object.replicas <= object.maxReplicas",
        "'Available' in object.stateCounts",
        "(size(object.list1) == 0) != (size(object.list2) == 0)",
        "!('MY_KEY' in object.map1) || object.map1['MY_KEY'].matches('^[a-zA-Z]*$')",
        "object.envars.filter(e, e.name == 'MY_ENV').all(e, e.value.matches('^[a-zA-Z]*$'))",
        "object.health.startsWith('ok')",
        "object.widgets.exists(w, w.key == 'x' && w.foo < 10)",
        "object.metadata.name.startsWith(object.prefix)",
        "object.set1.all(e, !(e in object.set2))",
        "size(object.names) == size(object.details) && object.names.all(n, n in object.details)",
        "size(object.clusters.filter(c, c.name == object.primary)) == 1",
    ] {
        assert!(verdict(expression, object.clone()), "{expression}");
    }
    let mut failing = object;
    failing["replicas"] = json!(9);
    failing["health"] = json!("degraded");
    failing["set2"] = json!([2]);
    for expression in [
        "object.minReplicas <= object.replicas && object.replicas <= object.maxReplicas",
        "object.health.startsWith('ok')",
        "object.set1.all(e, !(e in object.set2))",
    ] {
        assert!(!verdict(expression, failing.clone()), "{expression}");
    }
}

#[test]
fn the_library_examples() {
    let empty = json!({});
    for (expression, expected) in [
        // Lists.
        ("['a', 'b', 'c'].isSorted()", true),
        ("['b', 'a'].isSorted()", false),
        ("[0.5, 0.25, 0.25].sum() == 1.0", true),
        ("[3, 1].max() < [5, 4].min()", true),
        (
            "['a', 'should-be-first', 'b'].indexOf('should-be-first') == 1",
            true,
        ),
        ("[1, 2, 1].lastIndexOf(1) == 2", true),
        // Regex.
        ("'abc 123'.find('[0-9]+') == '123'", true),
        (
            "'1, 2, 3, 4'.findAll('[0-9]+').map(x, int(x)).sum() < 100",
            true,
        ),
        ("'1, 2, 3, 4'.findAll('[0-9]+', 2) == ['1', '2']", true),
        // URLs.
        (
            "url('https://example.com:80/').getHost() == 'example.com:80'",
            true,
        ),
        (
            "url('https://example.com:80/').getHostname() == 'example.com'",
            true,
        ),
        ("url('https://example.com:80/').getPort() == '80'", true),
        (
            "url('https://example.com/path').getScheme() == 'https'",
            true,
        ),
        (
            "url('https://example.com/path').getEscapedPath() == '/path'",
            true,
        ),
        (
            "url('https://example.com/?k=v&k=w').getQuery() == {'k': ['v', 'w']}",
            true,
        ),
        ("isURL('https://example.com/')", true),
        ("isURL('../relative-path')", false),
        // Quantity.
        ("isQuantity('1.3G')", true),
        ("isQuantity('1.3Gi1')", false),
        ("quantity('500000G').isInteger()", true),
        ("quantity('50k').asInteger() == 50000", true),
        ("quantity('50Mi').asApproximateFloat() == 52428800.0", true),
        ("quantity('50M').compareTo(quantity('10M')) == 1", true),
        ("quantity('50k').add(20) == quantity('50020')", true),
        (
            "quantity('50k').sub(quantity('20k')) == quantity('30k')",
            true,
        ),
        ("quantity('50k').isLessThan(quantity('100M'))", true),
        ("quantity('50k').isGreaterThan(quantity('100M'))", false),
        // IP and CIDR.
        ("isIP('127.0.0.1')", true),
        ("isIP('127.0.0.1:80')", false),
        (
            "ip('127.0.0.1').family() == 4 && ip('::1').family() == 6",
            true,
        ),
        ("ip('127.0.0.1').isLoopback()", true),
        ("ip('0.0.0.0').isUnspecified()", true),
        ("ip('fe80::1').isLinkLocalUnicast()", true),
        ("ip('224.0.0.1').isLinkLocalMulticast()", true),
        ("ip('192.168.0.1').isGlobalUnicast()", true),
        (
            "ip.isCanonical('127.0.0.1') && !ip.isCanonical('2001:db8:0:0:0:0:0:1')",
            true,
        ),
        ("string(ip('2001:db8::1')) == '2001:db8::1'", true),
        ("isCIDR('192.168.0.0/24')", true),
        ("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", true),
        ("cidr('192.168.0.0/24').containsIP('192.168.1.1')", false),
        (
            "cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))",
            true,
        ),
        ("cidr('192.168.0.0/24').prefixLength() == 24", true),
        ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')", true),
        (
            "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')",
            true,
        ),
        // Format.
        (
            "!format.dns1123Label().validate('my-name').hasValue()",
            true,
        ),
        ("format.dns1123Label().validate('MY_NAME').hasValue()", true),
        (
            "format.named('dns1123Subdomain').value().validate('a.b.c').hasValue()",
            false,
        ),
        ("format.named('no-such-format').hasValue()", false),
        // Sets.
        ("sets.contains([1, 2, 3, 4], [2, 3])", true),
        ("sets.equivalent([1, 2, 3], [3, 2, 1])", true),
        ("sets.intersects([1, 2], [2, 3])", true),
        ("sets.intersects([1], [2])", false),
        // Strings.
        (
            "'Hello'.lowerAscii() == 'hello' && 'hello'.upperAscii() == 'HELLO'",
            true,
        ),
        (
            "'hello'.charAt(1) == 'e' && 'hello'.indexOf('l') == 2",
            true,
        ),
        (
            "'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'",
            true,
        ),
        ("'  x '.trim() == 'x' && 'abc'.substring(1) == 'bc'", true),
        (
            "'abc'.replace('b', 'x') == 'axc' && 'abc'.reverse() == 'cba'",
            true,
        ),
        // Optionals.
        (
            "{'a': 1}.?b.orValue(5) == 5 && optional.of(1).value() == 1",
            true,
        ),
        ("optional.none().hasValue()", false),
    ] {
        assert_eq!(verdict(expression, empty.clone()), expected, "{expression}");
    }
}

#[test]
fn errors_are_errors_not_verdicts() {
    let variables = Variables::default();
    for expression in [
        "quantity('1Kb').isInteger()",
        "ip('300.1.1.1').family() == 4",
        "url('../x').getHost() == ''",
        "object.spec.replicas > 1",
        "[].max() == 1",
    ] {
        let result = compile(expression, &variables).evaluate_bool(&inputs(json!({}), None, None));
        assert!(
            matches!(result, Err(EvalError::Runtime(_))),
            "{expression}: {result:?}"
        );
    }
}
