use serde_json::json;

use super::*;

fn run(source: &str, object: Json) -> Result<Value, EvalError> {
    let expression = Expression::compile(source, &Variables::default()).expect(source);
    expression.evaluate(&Inputs {
        object: Some(object),
        ..Inputs::default()
    })
}

fn holds(source: &str) -> bool {
    match run(source, json!({})) {
        Ok(Value::Bool(b)) => b,
        other => panic!("{source}: {other:?}"),
    }
}

#[test]
fn standard_macros_read_the_object() {
    let pod = json!({"spec": {"containers": [{"name": "a", "image": "r/a:1"}, {"name": "b", "image": "r/b:latest"}]}});
    assert_eq!(
        run(
            "object.spec.containers.all(c, c.image.startsWith('r/'))",
            pod.clone()
        ),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        run(
            "object.spec.containers.exists(c, c.image.endsWith(':latest'))",
            pod.clone()
        ),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        run("object.spec.containers.map(c, c.name).join(',')", pod),
        Ok(Value::String(Arc::new("a,b".into())))
    );
}

#[test]
fn kubernetes_libraries() {
    for expression in [
        "[1, 2, 3].isSorted() && ![2, 1].isSorted()",
        "[1, 2, 3].sum() == 6 && [3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
        "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2",
        "'abc 123 def 456'.find('[0-9]+') == '123'",
        "'abc 123 def 456'.findAll('[0-9]+') == ['123', '456']",
        "url('https://example.com:80/path?k=v').getHost() == 'example.com:80'",
        "url('https://example.com/path?k=v&k=w').getQuery()['k'] == ['v', 'w']",
        "isURL('/absolute') && !isURL('../relative')",
        "quantity('1Gi').isGreaterThan(quantity('1G'))",
        "quantity('500m').add(quantity('500m')) == quantity('1')",
        "quantity('2').sub(1).asInteger() == 1 && quantity('1.5').isInteger() == false",
        "quantity('1k').compareTo(quantity('1000')) == 0 && isQuantity('1Ki') && !isQuantity('1Kb')",
        "ip('10.0.0.1').family() == 4 && ip('::1').isLoopback()",
        "cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
        "cidr('192.168.1.7/24').masked() == cidr('192.168.1.0/24') && cidr('10.0.0.0/8').prefixLength() == 8",
        "string(ip('2001:db8::1')) == '2001:db8::1' && ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')",
        "!isIP('010.0.0.1') && isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0/33')",
        "!format.dns1123Label().validate('my-name').hasValue() && format.dns1123Label().validate('My_Name').hasValue()",
        "format.named('labelValue').value().validate('ok').hasValue() == false",
        "sets.contains([1, 2, 3], [2]) && sets.equivalent([1, 2], [2, 1]) && sets.intersects([1], [1, 5])",
        "'Hello'.lowerAscii() == 'hello' && 'a,b'.split(',') == ['a', 'b'] && ' x '.trim() == 'x'",
        "optional.of(1).hasValue() && !optional.none().hasValue()",
        "{'a': 1}.?b.orValue(5) == 5",
    ] {
        assert!(holds(expression), "{expression}");
    }
}

#[test]
fn library_errors_are_runtime_errors() {
    for expression in [
        "quantity('1Kb')",
        "ip('not an ip')",
        "url('../x')",
        "[].min()",
    ] {
        assert!(
            matches!(run(expression, json!({})), Err(EvalError::Runtime(_))),
            "{expression}"
        );
    }
}

#[test]
fn compile_errors_carry_the_position() {
    let err = Expression::compile("object.spec &&\n  )", &Variables::default()).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    let err = Expression::compile("object.x == objct.y", &Variables::default()).unwrap_err();
    assert_eq!((err.line, err.column), (1, 13), "{err}");
    assert!(err.message.contains("objct"), "{err}");
    let err = Expression::compile("variables.missing", &Variables::default()).unwrap_err();
    assert!(err.message.contains("variables.missing"), "{err}");
}

#[test]
fn variables_compose_and_keep_their_type() {
    let mut variables = Variables::default();
    variables.declare("limit", "quantity('1Gi')").unwrap();
    variables
        .declare("names", "object.spec.containers.map(c, c.name)")
        .unwrap();
    let expression = Expression::compile(
        "variables.limit.isGreaterThan(quantity('1M')) && variables.names == ['a']",
        &variables,
    )
    .unwrap();
    let inputs = Inputs {
        object: Some(json!({"spec": {"containers": [{"name": "a"}]}})),
        ..Inputs::default()
    };
    assert_eq!(expression.evaluate_bool(&inputs), Ok(true));
}

#[test]
fn hostile_expressions_are_rejected_when_compiled() {
    // Four nested iterations over the object's containers.
    let nested = "object.spec.containers.all(a, object.spec.containers.all(b, \
                  object.spec.containers.all(c, object.spec.containers.all(d, a == d))))";
    let err = Expression::compile(nested, &Variables::default()).unwrap_err();
    assert!(err.message.contains("exceeds the limit"), "{err}");
    // A string that doubles with every variable.
    let mut variables = Variables::default();
    variables.declare("s0", "object.metadata.name").unwrap();
    let mut rejected = None;
    for i in 1..40 {
        let source = format!("variables.s{} + variables.s{}", i - 1, i - 1);
        if let Err(e) = variables.declare(&format!("s{i}"), &source) {
            rejected = Some(e);
            break;
        }
    }
    let err = rejected.expect("doubling is stopped");
    assert!(
        err.message.contains("exceeds") || err.message.contains("nodes"),
        "{err}"
    );
}

#[test]
fn an_expression_too_costly_for_one_object_is_not_run() {
    let expression = Expression::compile(
        "object.items.all(a, object.items.all(b, a != b || a == b))",
        &Variables::default(),
    )
    .expect("nested iteration over typical sizes is accepted");
    let small = Inputs {
        object: Some(json!({"items": (0..10).collect::<Vec<_>>()})),
        ..Inputs::default()
    };
    assert_eq!(expression.evaluate_bool(&small), Ok(true));
    let huge = Inputs {
        object: Some(json!({"items": (0..5000).collect::<Vec<_>>()})),
        ..Inputs::default()
    };
    assert!(matches!(
        expression.evaluate_bool(&huge),
        Err(EvalError::CostLimit { .. })
    ));
}

#[test]
fn the_runtime_estimate_bounds_the_actual_work() {
    let expression = Expression::compile(
        "object.spec.containers.all(c, c.image.matches('^r/'))",
        &Variables::default(),
    )
    .unwrap();
    let inputs = Inputs {
        object: Some(
            json!({"spec": {"containers": [{"image": "r/a"}, {"image": "r/b"}], "other": "x".repeat(100_000)}}),
        ),
        ..Inputs::default()
    };
    // The large unrelated field does not count: only the paths read do.
    assert!(
        expression.estimate(Some(&inputs)).cost < 100,
        "{:?}",
        expression.estimate(Some(&inputs))
    );
}
