//! The functions Kubernetes adds to CEL for admission policies, on top of
//! the `cel` crate's standard library and its `strings` and `lists`
//! extensions: the Kubernetes list, regex, URL, quantity, IP/CIDR, format
//! and sets libraries.

use std::cmp::Ordering;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelOptional, CelString, DYN_TYPE, LIST_TYPE, Type,
};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError, Value};

use super::net::{Cidr, Ip};
use super::quantity::Quantity;
use super::url::Url;

/// Functions the Kubernetes libraries add, for the documentation.
pub const FUNCTIONS: &[&str] = &[
    "isSorted",
    "sum",
    "min",
    "max",
    "indexOf",
    "lastIndexOf",
    "find",
    "findAll",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "quantity",
    "isQuantity",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isLessThan",
    "isGreaterThan",
    "compareTo",
    "ip",
    "isIP",
    "ip.isCanonical",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "containsIP",
    "containsCIDR",
    "masked",
    "prefixLength",
    "format.<name>",
    "format.named",
    "validate",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
];

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Out<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    lists(env)?;
    regex(env)?;
    urls(env)?;
    quantities(env)?;
    addresses(env)?;
    formats(env)?;
    sets(env)?;
    Ok(())
}

/// A CEL value as a `Value`, for functions that compare or add items.
fn value(val: &dyn Val) -> Result<Value, ExecutionError> {
    Value::try_from(val)
}

fn owned<'b, 'v>(value: Value) -> Out<'b, 'v> {
    let boxed: Box<dyn Val> = value.try_into()?;
    Ok(CowVal::from(boxed as Box<dyn Val + 'v>))
}

fn items(list: &dyn Val) -> Result<Vec<Value>, ExecutionError> {
    match value(list)? {
        Value::List(items) => Ok(items.as_ref().clone()),
        other => Err(ExecutionError::UnexpectedType {
            got: format!("{other:?}"),
            want: "list".into(),
        }),
    }
}

fn compare(a: &Value, b: &Value) -> Result<Ordering, ExecutionError> {
    a.partial_cmp(b)
        .ok_or_else(|| ExecutionError::ValuesNotComparable(a.clone(), b.clone()))
}

// Lists: isSorted, sum, min, max, indexOf, lastIndexOf.

fn lists(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("isSorted", "list.isSorted()", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list.sum()", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list.min()", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list.max()", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list.indexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list.lastIndexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    Ok(())
}

fn is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let list = items(args[0].as_ref())?;
    for pair in list.windows(2) {
        if compare(&pair[0], &pair[1])? == Ordering::Greater {
            return owned(Value::Bool(false));
        }
    }
    owned(Value::Bool(true))
}

fn sum<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let list = items(args[0].as_ref())?;
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in list {
        total = match (total, item) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(b).ok_or_else(|| overflow("sum"))?)
            }
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(b).ok_or_else(|| overflow("sum"))?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (_, other) => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("cannot add {other:?}: the items must be numbers of one type"),
                ));
            }
        };
    }
    owned(total)
}

fn overflow(function: &str) -> ExecutionError {
    ExecutionError::function_error(function, "integer overflow")
}

fn extreme<'b, 'v>(args: Args<'b, 'v>, name: &str, keep: Ordering) -> Out<'b, 'v> {
    let list = items(args[0].as_ref())?;
    let mut best: Option<Value> = None;
    for item in list {
        best = Some(match best {
            Some(current) if compare(&item, &current)? != keep => current,
            _ => item,
        });
    }
    owned(best.ok_or_else(|| {
        ExecutionError::function_error(name, format!("{name} called on an empty list"))
    })?)
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    extreme(args, "min", Ordering::Less)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    extreme(args, "max", Ordering::Greater)
}

fn position<'b, 'v>(args: Args<'b, 'v>, last: bool) -> Out<'b, 'v> {
    let list = items(args[0].as_ref())?;
    let wanted = value(args[1].as_ref())?;
    let mut found = list.iter().enumerate().filter(|(_, v)| **v == wanted);
    let index = if last {
        found.next_back()
    } else {
        found.next()
    };
    owned(Value::Int(index.map_or(-1, |(i, _)| i as i64)))
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    position(args, false)
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    position(args, true)
}

// Regex: find, findAll (RE2 syntax, as the `regex` crate's).

fn regex(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_member_overload!(env, fn find: (CelString, CelString) -> Result<CelString>)?;
    cel::add_member_overload!(env, fn find_all: (CelString, CelString) -> Result<CelList>)?;
    cel::add_member_overload!(env, fn find_all_n: (CelString, CelString, CelInt) -> Result<CelList>,
        name = "findAll")?;
    Ok(())
}

fn compiled(pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error("regex", e))
}

fn find(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
) -> Result<CelString<'static>, ExecutionError> {
    let re = compiled(pattern.inner())?;
    Ok(re
        .find(this.inner())
        .map_or_else(String::new, |m| m.as_str().to_owned())
        .into())
}

fn find_all(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
) -> Result<CelList<'static>, ExecutionError> {
    find_all_n(this, pattern, &CelInt::from(-1))
}

fn find_all_n(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
    limit: &CelInt,
) -> Result<CelList<'static>, ExecutionError> {
    let re = compiled(pattern.inner())?;
    let limit = usize::try_from(*limit.inner()).unwrap_or(usize::MAX);
    let found: Vec<Box<dyn Val>> = re
        .find_iter(this.inner())
        .take(limit)
        .map(|m| Box::new(CelString::from(m.as_str().to_owned())) as Box<dyn Val>)
        .collect();
    Ok(CelList::from(found))
}

// URLs.

fn urls(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn url: (CelString) -> Result<Url>)?;
    cel::add_overload!(env, fn is_url: (CelString) -> CelBool, name = "isURL")?;
    cel::add_member_overload!(env, fn get_scheme: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_host: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_hostname: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_port: (Url) -> CelString)?;
    cel::add_member_overload!(env, fn get_escaped_path: (Url) -> CelString)?;
    env.add_member_overload(
        "getQuery",
        "URL.getQuery()",
        Type::new_opaque_type("kubernetes.URL"),
        vec![],
        get_query,
    )?;
    Ok(())
}

fn url(text: &CelString<'_>) -> Result<Url, ExecutionError> {
    Url::parse(text.inner())
}

fn is_url(text: &CelString<'_>) -> CelBool {
    CelBool::from(Url::parse(text.inner()).is_ok())
}

fn get_scheme(this: &Url) -> CelString<'static> {
    this.scheme.clone().into()
}

fn get_host(this: &Url) -> CelString<'static> {
    this.host.clone().into()
}

fn get_hostname(this: &Url) -> CelString<'static> {
    this.hostname().to_owned().into()
}

fn get_port(this: &Url) -> CelString<'static> {
    this.port().to_owned().into()
}

fn get_escaped_path(this: &Url) -> CelString<'static> {
    this.path.clone().into()
}

fn get_query<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let this = args[0]
        .downcast_ref::<Url>()
        .ok_or_else(|| ExecutionError::function_error("getQuery", "not a URL"))?;
    let mut query: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for (key, value) in this.query_pairs() {
        query.entry(key).or_default().push(Value::from(value));
    }
    owned(Value::from(query))
}

// Quantities.

fn quantities(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn quantity: (CelString) -> Result<Quantity>)?;
    cel::add_overload!(env, fn is_quantity: (CelString) -> CelBool)?;
    cel::add_member_overload!(env, fn is_integer: (Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn as_integer: (Quantity) -> Result<CelInt>)?;
    cel::add_member_overload!(env, fn as_approximate_float: (Quantity) -> CelDouble)?;
    cel::add_member_overload!(env, fn add: (Quantity, Quantity) -> Result<Quantity>)?;
    cel::add_member_overload!(env, fn add_int: (Quantity, CelInt) -> Result<Quantity>, name = "add")?;
    cel::add_member_overload!(env, fn sub: (Quantity, Quantity) -> Result<Quantity>)?;
    cel::add_member_overload!(env, fn sub_int: (Quantity, CelInt) -> Result<Quantity>, name = "sub")?;
    cel::add_member_overload!(env, fn is_less_than: (Quantity, Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn is_greater_than: (Quantity, Quantity) -> CelBool)?;
    cel::add_member_overload!(env, fn compare_to: (Quantity, Quantity) -> CelInt)?;
    Ok(())
}

fn quantity(text: &CelString<'_>) -> Result<Quantity, ExecutionError> {
    Quantity::parse(text.inner())
}

fn is_quantity(text: &CelString<'_>) -> CelBool {
    CelBool::from(Quantity::parse(text.inner()).is_ok())
}

fn is_integer(this: &Quantity) -> CelBool {
    CelBool::from(this.as_integer().is_some())
}

fn as_integer(this: &Quantity) -> Result<CelInt, ExecutionError> {
    this.as_integer().map(CelInt::from).ok_or_else(|| {
        ExecutionError::function_error("asInteger", "cannot convert value to integer")
    })
}

fn as_approximate_float(this: &Quantity) -> CelDouble {
    CelDouble::from(this.as_float())
}

fn add(this: &Quantity, other: &Quantity) -> Result<Quantity, ExecutionError> {
    this.add(*other)
}

fn add_int(this: &Quantity, other: &CelInt) -> Result<Quantity, ExecutionError> {
    this.add(Quantity::from_int(*other.inner()))
}

fn sub(this: &Quantity, other: &Quantity) -> Result<Quantity, ExecutionError> {
    this.add(Quantity {
        nanos: -other.nanos,
    })
}

fn sub_int(this: &Quantity, other: &CelInt) -> Result<Quantity, ExecutionError> {
    this.add(Quantity::from_int(other.inner().saturating_neg()))
}

fn is_less_than(this: &Quantity, other: &Quantity) -> CelBool {
    CelBool::from(this.compare(other) == Ordering::Less)
}

fn is_greater_than(this: &Quantity, other: &Quantity) -> CelBool {
    CelBool::from(this.compare(other) == Ordering::Greater)
}

fn compare_to(this: &Quantity, other: &Quantity) -> CelInt {
    CelInt::from(this.compare(other) as i64)
}

// IP addresses and CIDR ranges.

fn addresses(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn ip: (CelString) -> Result<Ip>)?;
    cel::add_overload!(env, fn is_ip: (CelString) -> CelBool, name = "isIP")?;
    cel::add_overload!(env, fn ip_is_canonical: (CelString) -> Result<CelBool>, name = "ip.isCanonical")?;
    cel::add_overload!(env, fn ip_string: (Ip) -> CelString, name = "string")?;
    cel::add_member_overload!(env, fn family: (Ip) -> CelInt)?;
    cel::add_member_overload!(env, fn is_unspecified: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_loopback: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_link_local_multicast: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_link_local_unicast: (Ip) -> CelBool)?;
    cel::add_member_overload!(env, fn is_global_unicast: (Ip) -> CelBool)?;
    cel::add_overload!(env, fn cidr: (CelString) -> Result<Cidr>)?;
    cel::add_overload!(env, fn is_cidr: (CelString) -> CelBool, name = "isCIDR")?;
    cel::add_overload!(env, fn cidr_string: (Cidr) -> CelString, name = "string")?;
    cel::add_member_overload!(env, fn contains_ip: (Cidr, Ip) -> CelBool, name = "containsIP")?;
    cel::add_member_overload!(env, fn contains_ip_string: (Cidr, CelString) -> Result<CelBool>,
        name = "containsIP")?;
    cel::add_member_overload!(env, fn contains_cidr: (Cidr, Cidr) -> CelBool, name = "containsCIDR")?;
    cel::add_member_overload!(env, fn contains_cidr_string: (Cidr, CelString) -> Result<CelBool>,
        name = "containsCIDR")?;
    cel::add_member_overload!(env, fn cidr_ip: (Cidr) -> Ip, name = "ip")?;
    cel::add_member_overload!(env, fn masked: (Cidr) -> Cidr)?;
    cel::add_member_overload!(env, fn prefix_length: (Cidr) -> CelInt)?;
    Ok(())
}

fn ip(text: &CelString<'_>) -> Result<Ip, ExecutionError> {
    Ip::parse(text.inner())
}

fn is_ip(text: &CelString<'_>) -> CelBool {
    CelBool::from(Ip::parse(text.inner()).is_ok())
}

fn ip_is_canonical(text: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let parsed = Ip::parse(text.inner())?;
    Ok(CelBool::from(parsed.0.to_string() == text.inner()))
}

fn ip_string(this: &Ip) -> CelString<'static> {
    this.0.to_string().into()
}

fn family(this: &Ip) -> CelInt {
    CelInt::from(this.family())
}

fn is_unspecified(this: &Ip) -> CelBool {
    CelBool::from(this.0.is_unspecified())
}

fn is_loopback(this: &Ip) -> CelBool {
    CelBool::from(this.0.is_loopback())
}

fn is_link_local_multicast(this: &Ip) -> CelBool {
    CelBool::from(this.is_link_local_multicast())
}

fn is_link_local_unicast(this: &Ip) -> CelBool {
    CelBool::from(this.is_link_local_unicast())
}

fn is_global_unicast(this: &Ip) -> CelBool {
    CelBool::from(this.is_global_unicast())
}

fn cidr(text: &CelString<'_>) -> Result<Cidr, ExecutionError> {
    Cidr::parse(text.inner())
}

fn is_cidr(text: &CelString<'_>) -> CelBool {
    CelBool::from(Cidr::parse(text.inner()).is_ok())
}

fn cidr_string(this: &Cidr) -> CelString<'static> {
    this.to_string().into()
}

fn contains_ip(this: &Cidr, other: &Ip) -> CelBool {
    CelBool::from(this.contains_ip(other.0))
}

fn contains_ip_string(this: &Cidr, other: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    Ok(CelBool::from(this.contains_ip(Ip::parse(other.inner())?.0)))
}

fn contains_cidr(this: &Cidr, other: &Cidr) -> CelBool {
    CelBool::from(this.contains_cidr(other))
}

fn contains_cidr_string(this: &Cidr, other: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    Ok(CelBool::from(
        this.contains_cidr(&Cidr::parse(other.inner())?),
    ))
}

fn cidr_ip(this: &Cidr) -> Ip {
    Ip(this.address)
}

fn masked(this: &Cidr) -> Cidr {
    this.masked()
}

fn prefix_length(this: &Cidr) -> CelInt {
    CelInt::from(i64::from(this.prefix))
}

// Formats: `format.dns1123Label().validate(s)` is `optional.none()` when `s`
// is valid, otherwise the list of what is wrong.

fn formats(env: &mut Env) -> Result<(), DeclarationError> {
    let constructors: [cel::common::functions::Function; 6] = [
        format_at::<0>,
        format_at::<1>,
        format_at::<2>,
        format_at::<3>,
        format_at::<4>,
        format_at::<5>,
    ];
    for (&(name, _), constructor) in super::format::NAMES.iter().zip(constructors) {
        let id = format!("format.{name}()");
        env.add_overload(&format!("format.{name}"), &id, vec![], constructor)?;
    }
    cel::add_overload!(env, fn format_named: (CelString) -> Result<CelOptional>, name = "format.named")?;
    cel::add_member_overload!(env, fn validate: (Format, CelString) -> CelOptional)?;
    Ok(())
}

/// `format.<name>()` for the `I`th of [`super::format::NAMES`].
fn format_at<'b, 'v, const I: usize>(_args: Args<'b, 'v>) -> Out<'b, 'v> {
    Ok(CowVal::owned(Format {
        name: super::format::NAMES[I].0,
    }))
}

fn format_named(name: &CelString<'_>) -> Result<CelOptional<'static>, ExecutionError> {
    Ok(super::format::NAMES
        .iter()
        .find(|(n, _)| *n == name.inner())
        .map_or_else(CelOptional::none, |(n, _)| {
            CelOptional::of(Box::new(Format { name: n }))
        }))
}

fn validate(this: &Format, text: &CelString<'_>) -> CelOptional<'static> {
    let problems = super::format::problems(this.name, text.inner());
    if problems.is_empty() {
        return CelOptional::none();
    }
    let list: Vec<Box<dyn Val>> = problems
        .into_iter()
        .map(|p| Box::new(CelString::from(p)) as Box<dyn Val>)
        .collect();
    CelOptional::of(Box::new(CelList::from(list)))
}

pub static FORMAT_TYPE: std::sync::LazyLock<Type> =
    std::sync::LazyLock::new(|| Type::new_opaque_type("kubernetes.NamedFormat"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    name: &'static str,
}

impl Val for Format {
    fn get_type(&self) -> &Type {
        &FORMAT_TYPE
    }
    fn cel_type() -> &'static Type {
        &FORMAT_TYPE
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Format>() == Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
impl cel::common::value::StaticVal for Format {}

// Sets: sets.contains, sets.equivalent, sets.intersects.

fn sets(env: &mut Env) -> Result<(), DeclarationError> {
    let two_lists = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload(
        "sets.contains",
        "sets.contains(list,list)",
        two_lists(),
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "sets.equivalent(list,list)",
        two_lists(),
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "sets.intersects(list,list)",
        two_lists(),
        sets_intersects,
    )?;
    Ok(())
}

fn contains_all(a: &[Value], b: &[Value]) -> bool {
    b.iter().all(|x| a.contains(x))
}

fn sets_contains<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = (items(args[0].as_ref())?, items(args[1].as_ref())?);
    owned(Value::Bool(contains_all(&a, &b)))
}

fn sets_equivalent<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = (items(args[0].as_ref())?, items(args[1].as_ref())?);
    owned(Value::Bool(contains_all(&a, &b) && contains_all(&b, &a)))
}

fn sets_intersects<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = (items(args[0].as_ref())?, items(args[1].as_ref())?);
    owned(Value::Bool(a.iter().any(|x| b.contains(x))))
}
