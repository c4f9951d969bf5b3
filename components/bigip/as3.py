"""The AS3 request envelope cpaas posts with the f5bigip As3 resource (GSLB on the DNS device, imported
access profiles on a unit's BIG-IP).

Ref: https://clouddocs.f5.com/products/extensions/f5-appsvcs-extension/latest/refguide/schema-reference.html
"""

from __future__ import annotations

from typing import Any

from components import versions

COMMON = "Common"
SHARED = "Shared"


def request(declaration_id: str, label: str, tenants: dict[str, Any]) -> dict[str, Any]:
    """An AS3 deploy request (saved by AS3 itself: `persist`) declaring `tenants`."""
    return {
        "class": "AS3",
        "action": "deploy",
        "persist": True,
        "declaration": {
            "class": "ADC",
            "schemaVersion": versions.AS3_SCHEMA_VERSION,
            "id": declaration_id,
            "label": label,
            "remark": "managed by Pulumi (cpaas); do not edit on the device",
            **tenants,
        },
    }
