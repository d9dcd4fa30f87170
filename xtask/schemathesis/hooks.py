"""Schemathesis hooks of `cargo xtask test`: the few rules of the console's API that OpenAPI
cannot state, applied to every generated request before it is sent (`before_call` runs in every
phase, and Schemathesis checks the request against the document again afterwards).

- `cursor` is opaque: only a `next_cursor` the console issued is valid, never a made-up one.
  Generated requests leave it out (paging is tested in lambda-console/tests).
- The transform's `cnafPort` and `appPort` go together and differ: a request naming one of
  them alone, or both the same, names neither.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, kwargs):
    query = case.query
    if not query:
        return
    query.pop("cursor", None)
    if case.operation.path == "/api/v1/defenders/fargate.json":
        ports = [query.get("cnafPort"), query.get("appPort")]
        if (ports[0] is None) != (ports[1] is None) or (
            ports[0] is not None and str(ports[0]) == str(ports[1])
        ):
            query.pop("cnafPort", None)
            query.pop("appPort", None)
