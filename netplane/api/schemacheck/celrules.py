"""CEL ``x-kubernetes-validations`` rules of CRD schemas, compiled and run with cel-python.

cel-python only parses; it does not type-check. Compilation here adds the checks a
CRD author most often trips over — undeclared names and functions, and fields the
schema does not declare — and reports them in cel-go's layout
(``ERROR: <input>:line:col: …`` followed by the source line and a caret).
Failures are worded as Kubernetes 1.32 words them: the bad value printed is the
schema type of the node holding the rule (``Invalid value: "object": …``).
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

from netplane.api.errors import FieldError
from netplane.api.gofmt import quote
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.celfuncs import EXTENSIONS
from netplane.api.schemacheck.jsonvalues import canonical

Schema = dict[str, Any]

_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_FUNCTIONS = set(base_functions) | set(EXTENSIONS) | _MACROS | {"has"}
_TYPE_NAMES = {
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "duration",
    "timestamp",
    "dyn",
}
_META_FIELDS = {"apiVersion", "kind", "metadata"}
_MAX_MESSAGE_BYTES = 5 * 1024

_ENV = celpy.Environment()


@dataclass
class CompiledRule:
    """One entry of ``x-kubernetes-validations``, ready to run."""

    rule: str
    message: str
    message_expression: str
    field_path: str
    reason: str | None
    program: Any | None
    message_program: Any | None
    uses_old_self: bool
    error: str | None
    message_error: str | None


# Compilation -------------------------------------------------------------------------


def compile_rules(schema: Schema, is_root: bool = False) -> list[CompiledRule]:
    """Compile the rules declared on one schema node."""
    return list(_compile_cached(json.dumps(schema, sort_keys=True), is_root))


@functools.lru_cache(maxsize=512)
def _compile_cached(schema_json: str, is_root: bool) -> tuple[CompiledRule, ...]:
    schema = json.loads(schema_json)
    return tuple(
        _compile_one(entry, schema, is_root) for entry in schema.get("x-kubernetes-validations") or []
    )


def _compile_one(entry: dict[str, Any], schema: Schema, is_root: bool) -> CompiledRule:
    rule = str(entry.get("rule") or "")
    program, uses_old_self, error = None, False, None
    if rule.strip():
        tree, issues = _parse_and_check(rule, schema, is_root)
        if issues:
            error = "compilation failed: " + issues
        elif tree is not None:
            uses_old_self = _mentions(tree, "oldSelf")
            program = _ENV.program(tree, functions=EXTENSIONS)
    message_program, message_error = None, None
    message_expression = str(entry.get("messageExpression") or "")
    if message_expression.strip():
        tree, issues = _parse_and_check(message_expression, schema, is_root)
        if issues:
            message_error = "messageExpression compilation failed: " + issues
        elif tree is not None:
            message_program = _ENV.program(tree, functions=EXTENSIONS)
    return CompiledRule(
        rule=rule,
        message=str(entry.get("message") or ""),
        message_expression=message_expression,
        field_path=str(entry.get("fieldPath") or ""),
        reason=entry.get("reason"),
        program=program,
        message_program=message_program,
        uses_old_self=uses_old_self,
        error=error,
        message_error=message_error,
    )


def _issue(source: str, line: int, column: int, text: str) -> str:
    """cel-go's error layout; ``column`` is 1-based."""
    lines = source.split("\n")
    src_line = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"ERROR: <input>:{line}:{column}: {text}\n | {src_line}\n | {'.' * (column - 1)}^"


def _parse_and_check(source: str, schema: Schema, is_root: bool) -> tuple[lark.Tree | None, str]:
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        line = exc.line or 1
        column = exc.column or 1
        return None, _issue(source, line, column, "Syntax error: mismatched input")
    checker = _StaticCheck(source, is_root)
    checker.expr(tree, {"self": schema, "oldSelf": schema})
    return tree, "\n".join(checker.issues)


def _mentions(tree: lark.Tree, name: str) -> bool:
    return any(
        isinstance(tok, lark.Token) and tok.type == "IDENT" and tok.value == name
        for node in tree.iter_subtrees()
        if node.data == "ident"
        for tok in node.children
    )


class _StaticCheck:
    """Catches names, functions and fields that cel-go's type checker would reject."""

    def __init__(self, source: str, is_root: bool) -> None:
        self.source = source
        self.is_root = is_root
        self.issues: list[str] = []

    def _report(self, token: Any, text: str, shift: int = 0) -> None:
        line = getattr(token, "line", 1) or 1
        column = (getattr(token, "column", 1) or 1) + shift
        self.issues.append(_issue(self.source, line, column, text))

    def expr(self, node: Any, scope: dict[str, Schema | None]) -> Schema | None:
        """Walk ``node``; return the schema of its value when it is statically known."""
        if not isinstance(node, lark.Tree):
            return None
        kind = node.data
        if kind == "ident":
            return self._ident(node.children[0], scope)
        if kind == "ident_arg":
            return self._call(node, scope)
        if kind == "member_dot":
            target = self.expr(node.children[0], scope)
            return self._select(target, node.children[1], node.children[0])
        if kind == "member_dot_arg":
            return self._method(node, scope)
        if kind == "member_index":
            target = self.expr(node.children[0], scope)
            for c in node.children[1:]:
                self.expr(c, scope)
            return _element_schema(target)
        result = None
        for c in node.children:
            result = self.expr(c, scope)
        # Only pass-through nodes (one child) keep the schema of what they wrap.
        return result if len(node.children) == 1 else None

    def _ident(self, token: Any, scope: dict[str, Schema | None]) -> Schema | None:
        name = str(token)
        if name in scope:
            return scope[name]
        if name not in _TYPE_NAMES:
            self._report(token, f"undeclared reference to '{name}' (in container '')")
        return None

    def _call(self, node: lark.Tree, scope: dict[str, Schema | None]) -> Schema | None:
        name_token = node.children[0]
        if str(name_token) not in _FUNCTIONS:
            self._report(name_token, f"undeclared reference to '{name_token}' (in container '')")
        for c in node.children[1:]:
            self.expr(c, scope)
        return None

    def _method(self, node: lark.Tree, scope: dict[str, Schema | None]) -> Schema | None:
        target_node, name_token = node.children[0], node.children[1]
        args = (
            node.children[2].children
            if len(node.children) > 2 and isinstance(node.children[2], lark.Tree)
            else []
        )
        target = self.expr(target_node, scope)
        name = str(name_token)
        if name in _MACROS and args:
            var = _ident_name(args[0])
            inner = dict(scope)
            if var is not None:
                inner[var] = _element_schema(target) if not _is_map(target) else {"type": "string"}
            for a in args[1:]:
                self.expr(a, inner)
            return None
        if name not in _FUNCTIONS:
            self._report(name_token, f"undeclared reference to '{name}' (in container '')")
        for a in args:
            self.expr(a, scope)
        return None

    def _select(self, target: Schema | None, field_token: Any, target_node: Any) -> Schema | None:
        if target is None:
            return None
        name = str(field_token)
        props = target.get("properties")
        if self.is_root and target.get("_root") and name in _META_FIELDS:
            return None
        if isinstance(props, dict) and name in props:
            return props[name]
        if isinstance(target.get("additionalProperties"), dict):
            return target["additionalProperties"]
        if target.get("x-kubernetes-preserve-unknown-fields") or target.get("additionalProperties") is True:
            return None
        ttype = target.get("type")
        if ttype == "object" or props:
            self._report(field_token, f"undefined field '{name}'", shift=-1)
        elif ttype in ("string", "integer", "number", "boolean", "array"):
            cel_type = {"integer": "int", "number": "double", "boolean": "bool", "array": "list"}.get(
                ttype, ttype
            )
            self._report(field_token, f"type '{cel_type}' does not support field selection", shift=-1)
        return None


def _ident_name(node: Any) -> str | None:
    for sub in node.iter_subtrees_topdown() if isinstance(node, lark.Tree) else []:
        if sub.data == "ident":
            return str(sub.children[0])
    return None


def _is_map(schema: Schema | None) -> bool:
    return schema is not None and isinstance(schema.get("additionalProperties"), dict)


def _element_schema(schema: Schema | None) -> Schema | None:
    if schema is None:
        return None
    if isinstance(schema.get("items"), dict):
        return schema["items"]
    if isinstance(schema.get("additionalProperties"), dict):
        return schema["additionalProperties"]
    return None


def rule_compile_errors(schema: Schema, path: str, is_root: bool) -> list[FieldError]:
    """Errors for the rules of one schema node, at ``<path>.x-kubernetes-validations[i]``."""
    errs: list[FieldError] = []
    marked = dict(schema, _root=True) if is_root else schema
    for i, compiled in enumerate(compile_rules(marked, is_root)):
        entry = schema["x-kubernetes-validations"][i]
        here = f"{path}.x-kubernetes-validations[{i}]"
        if compiled.error:
            errs.append(_rule_invalid(f"{here}.rule", entry, compiled.error))
        if compiled.message_error:
            errs.append(_rule_invalid(f"{here}.messageExpression", entry, compiled.message_error))
    return errs


def _rule_invalid(field: str, entry: dict[str, Any], detail: str) -> FieldError:
    """field.Invalid with the rule itself as bad value, printed as Go's ``%#v`` prints it."""

    def text(key: str) -> str:
        return quote(str(entry.get(key) or ""))

    reason = (
        "(*apiextensions.FieldValueErrorReason)(nil)"
        if entry.get("reason") is None
        else f"(*apiextensions.FieldValueErrorReason)({quote(str(entry['reason']))})"
    )
    optional = (
        "(*bool)(nil)"
        if entry.get("optionalOldSelf") is None
        else f"(*bool)({'true' if entry['optionalOldSelf'] else 'false'})"
    )
    shown = (
        f"apiextensions.ValidationRule{{Rule:{text('rule')}, Message:{text('message')}, "
        f"MessageExpression:{text('messageExpression')}, Reason:{reason}, "
        f"FieldPath:{text('fieldPath')}, OptionalOldSelf:{optional}}}"
    )
    return FieldError("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")


# Evaluation --------------------------------------------------------------------------


def evaluate_rules(obj: Any, schema: Schema, old: Any = None, path: str = causes.ROOT) -> list[FieldError]:
    """Run every rule in ``schema`` against ``obj``; ``old`` enables transition rules."""
    return _walk(obj, schema, old, path, is_root=True)


def _walk(obj: Any, s: Schema, old: Any, path: str, is_root: bool = False) -> list[FieldError]:
    if obj is None:
        return []  # rules only see non-null values
    errs = _run_node(obj, s, old, path, is_root)
    if isinstance(obj, dict):
        old_map = old if isinstance(old, dict) else {}
        additional = s.get("additionalProperties")
        props = s.get("properties") or {}
        if isinstance(additional, dict):
            for k, v in obj.items():
                errs += _walk(v, additional, old_map.get(k), causes.key(path, k))
        for k, v in obj.items():
            if k in props:
                errs += _walk(v, props[k], old_map.get(k), causes.child(path, k))
    elif isinstance(obj, list) and isinstance(s.get("items"), dict):
        olds = _correlated_items(obj, s, old)
        for i, item in enumerate(obj):
            errs += _walk(item, s["items"], olds[i], causes.index(path, i))
    return errs


def _correlated_items(items: list[Any], s: Schema, old: Any) -> list[Any]:
    # Only map-keyed lists let oldSelf follow an item across an update.
    if s.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return [None] * len(items)
    keys = s.get("x-kubernetes-list-map-keys") or []
    by_key = {canonical([o.get(k) for k in keys]): o for o in old if isinstance(o, dict)}
    return [by_key.get(canonical([x.get(k) for k in keys])) if isinstance(x, dict) else None for x in items]


def _run_node(obj: Any, s: Schema, old: Any, path: str, is_root: bool) -> list[FieldError]:
    if not s.get("x-kubernetes-validations"):
        return []
    errs: list[FieldError] = []
    type_name = s.get("type", "")
    marked = dict(s, _root=True) if is_root else s
    self_value = to_cel(obj, s)
    activation: dict[str, Any] = {"self": self_value}
    if old is not None:
        activation["oldSelf"] = to_cel(old, s)
    for compiled in compile_rules(marked, is_root):
        if compiled.error:
            errs.append(causes.invalid(path, type_name, f"rule compile error: {compiled.error}"))
            continue
        if compiled.program is None or (compiled.uses_old_self and old is None):
            continue  # transition rules run only when there is an old value to compare with
        outcome = _run(compiled.program, activation)
        if isinstance(outcome, CELEvalError):
            errs.append(causes.invalid(path, type_name, _eval_error_detail(outcome, compiled)))
            continue
        if outcome is True or (isinstance(outcome, celtypes.BoolType) and bool(outcome)):
            continue
        where = path
        normalized = normalize_field_path(compiled.field_path)
        if normalized:
            where = (
                causes.child(path, normalized)
                if not normalized.startswith("[")
                else f"{'' if path == causes.ROOT else path}{normalized}"
            )
        errs.append(_failure(where, type_name, _detail(compiled, activation), compiled.reason))
    return errs


def _run(program: Any, activation: dict[str, Any]) -> Any:
    try:
        return program.evaluate(activation)
    except CELEvalError as exc:
        return exc
    except (ArithmeticError, TypeError, ValueError, KeyError, IndexError) as exc:
        return CELEvalError(str(exc))


def _eval_error_detail(error: CELEvalError, compiled: CompiledRule) -> str:
    text = str(error.args[0]) if error.args else str(error)
    shown = compiled.message.strip() or compiled.rule.strip()
    if text.startswith("found no matching overload"):
        return (
            f"'no such overload': call arguments did not match a supported operator, function or "
            f"macro signature for rule: {shown}"
        )
    if text.startswith("no such member in mapping: "):
        text = "no such key: " + text.removeprefix("no such member in mapping: ").strip("'")
    elif text == "invalid_argument":
        text = "index out of bounds"
    return f"{text} evaluating rule: {shown}"


def _detail(compiled: CompiledRule, activation: dict[str, Any]) -> str:
    if compiled.message_program is not None:
        value = _run(compiled.message_program, activation)
        if isinstance(value, str) and not isinstance(value, CELEvalError):
            text = str(value).strip()
            if text and "\n" not in text and len(text.encode()) <= _MAX_MESSAGE_BYTES:
                return text
    if compiled.message:
        return compiled.message.strip()
    return f"failed rule: {compiled.rule.strip()}"


def _failure(path: str, type_name: str, detail: str, reason: str | None) -> FieldError:
    if reason == "FieldValueForbidden":
        return causes.forbidden(path, detail)
    if reason == "FieldValueRequired":
        return causes.required(path, detail)
    if reason == "FieldValueDuplicate":
        return causes.duplicate(path, type_name)
    return causes.invalid(path, type_name, detail)


# Values ------------------------------------------------------------------------------


def to_cel(value: Any, s: Schema | None) -> Any:
    """A JSON value as the CEL value its schema makes of it (numbers, timestamps, bytes)."""
    s = s or {}
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        if s.get("type") == "number":
            return celtypes.DoubleType(float(value))
        if isinstance(value, float) and not (s.get("type") == "integer" and value.is_integer()):
            return celtypes.DoubleType(value)
        return celtypes.IntType(int(value))
    if isinstance(value, str):
        return _string_to_cel(value, s.get("format", ""))
    if isinstance(value, list):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        return celtypes.ListType([to_cel(v, items) for v in value])
    if isinstance(value, dict):
        props = s.get("properties") or {}
        additional = (
            s.get("additionalProperties") if isinstance(s.get("additionalProperties"), dict) else None
        )
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(v, props.get(k) or additional) for k, v in value.items()}
        )
    return celpy.json_to_cel(value)


def _string_to_cel(value: str, fmt: str) -> Any:
    try:
        if fmt == "date-time":
            return celtypes.TimestampType(value)
        if fmt == "duration":
            return celtypes.DurationType(value)
        if fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value))
    except (ValueError, TypeError):
        pass
    return celtypes.StringType(value)


# Field paths -------------------------------------------------------------------------


def normalize_field_path(field_path: str) -> str:
    """``.spec.foo['bar']`` as the field path Kubernetes reports: ``spec.foo.bar``."""
    parts = parse_field_path(field_path)
    return ".".join(parts) if parts is not None else ""


def parse_field_path(field_path: str) -> list[str] | None:
    """The field names of a rule's ``fieldPath``, or None if it is not a simple JSON path."""
    text = field_path.strip()
    names: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            if j == i + 1:
                return None
            names.append(text[i + 1 : j])
            i = j
        elif text.startswith("['", i):
            end = text.find("']", i + 2)
            if end < 0:
                return None
            names.append(text[i + 2 : end].replace("\\'", "'"))
            i = end + 2
        else:
            return None
    return names if names else None


def field_path_valid(field_path: str, schema: Schema) -> bool:
    """Whether every name of ``field_path`` is a declared property (or map key) of ``schema``."""
    names = parse_field_path(field_path)
    if names is None:
        return False
    node: Schema = schema
    for name in names:
        props = node.get("properties") or {}
        if name in props:
            node = props[name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True
