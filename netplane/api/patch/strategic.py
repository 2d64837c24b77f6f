"""Strategic merge patch, the ``application/strategic-merge-patch+json`` patch type.

Objects merge key by key and ``null`` removes a key. Lists follow the field's
``x-kubernetes-patch-strategy``: ``merge`` lists of objects are merged element by
element, matched on ``x-kubernetes-patch-merge-key``; ``merge`` lists of scalars
become the union; every other list is replaced. The patch may carry directives:

* ``$patch``: ``replace`` or ``delete`` an object; in a list, ``{"$patch": "replace"}``
  replaces the whole list and ``{"<key>": v, "$patch": "delete"}`` removes an element;
* ``$retainKeys``: the only keys the object may keep;
* ``$setElementOrder/<field>``: the order of the list ``<field>`` after merging;
* ``$deleteFromPrimitiveList/<field>``: scalars to remove from the list ``<field>``.

Values the patch adds where the original has nothing to merge with are stored
cleaned of directives and nulls, so none ever reaches the stored object.
"""

from __future__ import annotations

from typing import Any

from netplane.api.gofmt import format_t, format_v, json_kind
from netplane.api.patch._meta import FieldMeta, Schema, field_meta, resolve_schema
from netplane.api.patch._order import arrange, identity, position
from netplane.api.patch._values import clone, same
from netplane.api.patch.errors import PatchError

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_ELEMENT_ORDER = "invalid patch format of setElementOrder list"

_DROP = object()  # what cleaning returns for a value that must not be stored at all

JSONMap = dict[str, Any]


def apply_strategic_merge_patch(original: JSONMap, patch: JSONMap, schema: Schema) -> JSONMap:
    """Return ``original`` with the strategic merge patch applied; no input is changed.

    ``schema`` is the kind's JSON schema (see :func:`netplane.api.schemas.kind_schema`).
    """
    if not isinstance(original, dict) or not isinstance(patch, dict):
        raise PatchError("invalid JSON document", 400)
    # Both are copied once so that merging below can work in place.
    return _merge_map(clone(original), clone(patch), resolve_schema(schema))


# --- objects -----------------------------------------------------------------------------------------


def _merge_map(original: JSONMap, patch: JSONMap, schema: Schema | None) -> JSONMap:
    """Merge ``patch`` into ``original``; both are private copies and may be changed."""
    if PATCH in patch:
        directive = patch.pop(PATCH)
        if directive == "replace":
            return _clean_map(patch)
        if directive == "delete":
            return {}
        if directive != "merge":  # merge is what happens anyway
            raise PatchError(f"unknown patch type: {format_v(directive)} in map: {format_v(patch)}")
    _retain_keys(original, patch)
    _set_element_orders(original, patch, schema)
    for key, value in patch.items():
        _merge_key(original, key, value, schema)
    return original


def _retain_keys(original: JSONMap, patch: JSONMap) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise PatchError(_BAD_RETAIN_KEYS, 400)
    for key, value in patch.items():
        # A key the patch sets must be one it retains; nulls and list directives are exempt.
        if value is None or key.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
            continue
        if key not in keep:
            raise PatchError(_BAD_RETAIN_KEYS, 400)
    for key in [k for k in original if k not in keep]:
        del original[key]


def _merge_key(original: JSONMap, key: str, value: Any, schema: Schema | None) -> None:
    name, deleting = key, key.startswith(DELETE_FROM_PRIMITIVE_LIST)
    if deleting:
        name = _directive_field(key, DELETE_FROM_PRIMITIVE_LIST, _BAD_PRIMITIVE_LIST)
        if not isinstance(value, list):
            raise PatchError(_BAD_PRIMITIVE_LIST, 400)
    if value is None:
        original.pop(name, None)
        return
    if name not in original or json_kind(original[name]) != json_kind(value):
        if not deleting:  # there is nothing to delete from
            _store(original, name, _clean(value))
        return
    meta = field_meta(schema, name)
    if isinstance(value, dict):
        _store(original, name, _merge_map_field(original[name], value, meta))
    elif isinstance(value, list):
        original[name] = _merge_list_field(original[name], value, meta, deleting)
    else:
        original[name] = value


def _merge_map_field(current: JSONMap, value: JSONMap, meta: FieldMeta) -> Any:
    if meta.strategy == "replace":
        value.pop(PATCH, None)
        return _clean(value)
    return _merge_map(current, value, meta.schema)


def _store(original: JSONMap, name: str, value: Any) -> None:
    if value is _DROP:
        original.pop(name, None)
    else:
        original[name] = value


def _directive_field(key: str, prefix: str, error: str) -> str:
    """The field a ``<prefix>/<field>`` directive key refers to."""
    head, sep, field = key.partition("/")
    if head != prefix or not sep:
        raise PatchError(error, 400)
    return field


# --- lists ---------------------------------------------------------------------------------------------


def _merge_list_field(current: list[Any], value: list[Any], meta: FieldMeta,
                      deleting: bool = False) -> list[Any]:
    if meta.strategy != "merge" and not deleting:
        return _clean_list(value)
    if not current and not value:
        return current
    element_kind = _element_kind(current, value)
    if element_kind != "object":
        return _merge_scalars(current, value, deleting)
    if deleting:
        raise PatchError(_BAD_PRIMITIVE_LIST, 400)
    if not meta.merge_key:
        raise PatchError(f"cannot merge lists without merge key for {meta.name}")
    return _merge_maps(current, value, meta)


def _element_kind(*lists: list[Any]) -> str:
    kinds = {json_kind(item) for items in lists for item in items}
    if "array" in kinds:
        raise PatchError("lists of lists are not supported", 422)
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {format_v(list(lists))}")
    return kinds.pop()


def _merge_scalars(current: list[Any], value: list[Any], deleting: bool) -> list[Any]:
    if deleting:
        return [item for item in current if position(value, item, "") < 0]
    union: list[Any] = []
    for item in current + value:
        if position(union, item, "") < 0:
            union.append(item)
    return arrange(union, value, current, "")


def _merge_maps(current: list[Any], value: list[Any], meta: FieldMeta) -> list[Any]:
    base, elements = _list_directives(current, value, meta.merge_key)
    merged = list(base)
    for element in elements:
        _require_merge_key(element, meta.merge_key)
        i = position(merged, element, meta.merge_key)
        if i < 0:
            merged.append(_clean(element))
        else:
            merged[i] = _merge_map(merged[i], element, meta.schema)
    return arrange(merged, elements, base, meta.merge_key)


def _list_directives(current: list[Any], value: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Apply the ``$patch`` elements of a list patch.

    Returns the list to merge into (``current`` minus deleted elements, or the patch's
    own elements when it replaces the list) and the elements still to merge."""
    elements: list[Any] = []
    replace = False
    for element in value:
        if PATCH not in element:
            elements.append(element)
            continue
        directive = element[PATCH]
        if directive == "delete":
            _require_merge_key(element, merge_key)
            gone = identity(element, merge_key)
            current = [c for c in current if not same(identity(c, merge_key), gone)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {format_v(directive)} in map: {format_v(element)}")
    if replace:
        return [_clean(e) for e in elements], []
    return current, elements


def _require_merge_key(element: JSONMap, merge_key: str) -> None:
    if merge_key not in element:
        raise PatchError(f"map: {format_v(element)} does not contain declared merge key: {merge_key}")


# --- $setElementOrder -----------------------------------------------------------------------------------


def _set_element_orders(original: JSONMap, patch: JSONMap, schema: Schema | None) -> None:
    """Merge each list that has a ``$setElementOrder`` directive, then put it in that order.

    The merged lists are removed from ``patch`` so the ordinary merge leaves them alone."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        name = _directive_field(key, SET_ELEMENT_ORDER, _BAD_ELEMENT_ORDER)
        if not isinstance(order, list):
            raise PatchError(_BAD_ELEMENT_ORDER, 400)
        _order_list(original, patch, name, order, field_meta(schema, name))


def _order_list(original: JSONMap, patch: JSONMap, name: str, order: list[Any], meta: FieldMeta) -> None:
    current = _list_or_none(original.get(name))
    incoming = _list_or_none(patch.get(name))
    _validate_order(incoming or [], order, meta.merge_key)
    if incoming is None and name in patch:
        return  # the patch nulls the list; ordering it first would be pointless
    if current is not None and incoming is None:
        merged = current
    elif current is None and incoming is not None:
        merged = _clean_list(incoming)
    elif current is not None and incoming is not None:
        merged = _merge_list_field(current, incoming, meta)
    else:
        return
    original[name] = arrange(merged, order, current or [], meta.merge_key)
    patch.pop(name, None)


def _list_or_none(value: Any) -> list[Any] | None:
    if value is None or isinstance(value, list):
        return value
    raise PatchError(f"expected a []interface {{}}, but received a {format_t(value)}")


def _validate_order(elements: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch's elements must appear in ``order``, in the same relative order."""
    if merge_key:
        for named in order:
            if not isinstance(named, dict) or merge_key not in named:
                raise PatchError(f"map: {format_v(named)} does not contain declared merge key: {merge_key}")
        # Deleted elements are gone from the result, so the order need not name them.
        elements = [e for e in elements if not (isinstance(e, dict) and e.get(PATCH) == "delete")]
    if not elements or not order:
        return
    i = j = 0
    while i < len(elements) and j < len(order):
        if isinstance(elements[i], dict) and PATCH in elements[i]:
            i += 1
            continue
        if merge_key:
            _require_merge_key(elements[i], merge_key)
        if same(identity(elements[i], merge_key), identity(order[j], merge_key)):
            i += 1
        j += 1
    if i < len(elements):
        raise PatchError(f"The order in patch list:\n{format_v(elements)}\n doesn't match "
                         f"{SET_ELEMENT_ORDER} list:\n{format_v(order)}\n")


# --- cleaning values that have nothing to merge with ----------------------------------------------------


def _clean(value: Any) -> Any:
    """``value`` without directives and null members, or ``_DROP`` if it is a deletion."""
    if isinstance(value, dict):
        if value.get(PATCH) == "delete":
            return _DROP
        return _clean_map(value)
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_map(value: JSONMap) -> JSONMap:
    cleaned: JSONMap = {}
    for key, member in value.items():
        if member is None or _is_directive(key):
            continue
        member = _clean(member)
        if member is not _DROP:
            cleaned[key] = member
    return cleaned


def _clean_list(value: list[Any]) -> list[Any]:
    # In a list, any element carrying $patch is an instruction, not an element.
    return [_clean(item) for item in value if not (isinstance(item, dict) and PATCH in item)]


def _is_directive(key: str) -> bool:
    return key in (PATCH, RETAIN_KEYS) or key.startswith(
        (SET_ELEMENT_ORDER + "/", DELETE_FROM_PRIMITIVE_LIST + "/"))
