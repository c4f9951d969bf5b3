"""Fill the schema cache from pinned upstream files: ``python -m tools.schemas [--dest DIR]``.

The pins below were generated once from /work/shared/schemas/MANIFEST.md (Files table + full commits
from its "Upstream sources" table) and checked against the shared copy; they are data, not parsed
at run time. Each download is checked against its sha256 before anything is written, and files are
written via a temporary name + rename, so a mismatch leaves no partial file. MANIFEST.md is written
last and marks the cache as complete (tools.validate.resolve_schema_dir looks for it).

The two gateway-api files are not upstream files: they are the standard-channel CRDs concatenated
like upstream hack/build-install-yaml.sh does, without its license header, so each component and the
result are checked.
Ref: https://github.com/kubernetes-sigs/gateway-api/blob/v1.5.1/hack/build-install-yaml.sh
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

RAW = "https://raw.githubusercontent.com"
MANIFEST = "MANIFEST.md"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "cpaas" / "schemas"


PINNED: tuple[tuple[str, str, str], ...] = (
    (
        "calico/chart/tigera-operator/Chart.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/charts/tigera-operator/Chart.yaml",
        "e9c43dedecc5fea79a21ed8b75b05103e7c3c1192aa6aaf9431fa11483984ae3",
    ),
    (
        "calico/chart/tigera-operator/values.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/charts/tigera-operator/values.yaml",
        "c25ddfdfe15fb15d045c3f0692479f19cb85a651a9536cec5083e0903a771019",
    ),
    (
        "calico/crds.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/manifests/crds.yaml",
        "ec6d7ac63999ff5df68aa02dcb37063496306de16df04f5f26a4588819e707ec",
    ),
    (
        "calico/operator-crds.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/manifests/operator-crds.yaml",
        "192f8b2d934ef24b62e86b7e1a6e1762d1c8af26a916f78057bc13fa5ed60f71",
    ),
    (
        "calico/v3-crds/projectcalico.org_bgpconfigurations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_bgpconfigurations.yaml",
        "3905667e6912abfe893acfd19b36868b67eca281d66911fa21d09d3da1d740e3",
    ),
    (
        "calico/v3-crds/projectcalico.org_bgpfilters.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_bgpfilters.yaml",
        "c361e42c5f5fc0d7e3d51b790979b19f63b1f96457d9ff522bf2243c6aeb9448",
    ),
    (
        "calico/v3-crds/projectcalico.org_bgppeers.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_bgppeers.yaml",
        "9711d329833ae5606b850c235b314de47fdea5c126bbff9aa7066a0c9ae17194",
    ),
    (
        "calico/v3-crds/projectcalico.org_blockaffinities.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_blockaffinities.yaml",
        "f9304f06a422c11327bc0fe4533ed8a36e3f42297605f2c53c35bd0202c01832",
    ),
    (
        "calico/v3-crds/projectcalico.org_caliconodestatuses.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_caliconodestatuses.yaml",
        "33c0ba7087bdd33d2620bbd51f7b24ad1c0c615d51f1991a0d358c23f6ff06dc",
    ),
    (
        "calico/v3-crds/projectcalico.org_clusterinformations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_clusterinformations.yaml",
        "c07325575ba52309b225544e307bf49989a61af4499aefc42b00ab58e589cb4c",
    ),
    (
        "calico/v3-crds/projectcalico.org_felixconfigurations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_felixconfigurations.yaml",
        "a2f9c31c20cb64429ef523238938910399fa28f62660960c8a0cc510d7023692",
    ),
    (
        "calico/v3-crds/projectcalico.org_globalnetworkpolicies.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_globalnetworkpolicies.yaml",
        "4ff521a0c90c0e29269c20e6921cbc73b16f8c97dcb1db663ed5fa3e379c7db5",
    ),
    (
        "calico/v3-crds/projectcalico.org_globalnetworksets.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_globalnetworksets.yaml",
        "a79b0003807fbecdb9c1564cebac88d567f95656c4c122a5fd55db6a5d843e0d",
    ),
    (
        "calico/v3-crds/projectcalico.org_hostendpoints.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_hostendpoints.yaml",
        "256d5069195a1449e4d68008b5bcf3080d68203ffa5e79143cc4314632013802",
    ),
    (
        "calico/v3-crds/projectcalico.org_ipamblocks.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_ipamblocks.yaml",
        "048450487a072e4d6f94dc740c973e1ccb712f9ec9e0e63ec4c0a437a92c3dc0",
    ),
    (
        "calico/v3-crds/projectcalico.org_ipamconfigurations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_ipamconfigurations.yaml",
        "c41350f1e602010b49efed78e9751015857ddee7f846f0084c9e7f1c9a04c6dc",
    ),
    (
        "calico/v3-crds/projectcalico.org_ipamhandles.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_ipamhandles.yaml",
        "cec55c3bdde0c8cb2f58aa92edbd264306d2974faa0b135acf23ab4d66b92e10",
    ),
    (
        "calico/v3-crds/projectcalico.org_ippools.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_ippools.yaml",
        "e7b0e71cd155212b12d2355d365a944847d73afa03e051907dd26bffa3e2879c",
    ),
    (
        "calico/v3-crds/projectcalico.org_ipreservations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_ipreservations.yaml",
        "4656135de8913bec3c6a6a6a3d55065f69609bba9d8c1699533ece7f29a71c1d",
    ),
    (
        "calico/v3-crds/projectcalico.org_kubecontrollersconfigurations.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_kubecontrollersconfigurations.yaml",
        "47873e4c282534b99710a70f471b4001549a0d31555112850ed8127a1c124c04",
    ),
    (
        "calico/v3-crds/projectcalico.org_networkpolicies.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_networkpolicies.yaml",
        "a8bd68748f7f91e9216f6215568ea02abfe7599ddd73c38c86b4e9bd86913685",
    ),
    (
        "calico/v3-crds/projectcalico.org_networksets.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_networksets.yaml",
        "d51dd73e48fd3b1100d372309781be0c5bd7a613fc8b71b2997026e543608572",
    ),
    (
        "calico/v3-crds/projectcalico.org_stagedglobalnetworkpolicies.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_stagedglobalnetworkpolicies.yaml",
        "65aca107f60798a81bdcc583a486c469efbb6d9198e00dc7bece767ac5d5a856",
    ),
    (
        "calico/v3-crds/projectcalico.org_stagedkubernetesnetworkpolicies.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_stagedkubernetesnetworkpolicies.yaml",
        "7e25873f286557973b2db38703daad909063d320a2d61e4d8b83f67d4d584787",
    ),
    (
        "calico/v3-crds/projectcalico.org_stagednetworkpolicies.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_stagednetworkpolicies.yaml",
        "b82b080aca3eadf50e1d2dd68851e73d8a3461b25156a057f269cd580fa7500b",
    ),
    (
        "calico/v3-crds/projectcalico.org_tiers.yaml",
        f"{RAW}/projectcalico/calico/0ca9d1b93644778cafdf1812f3dda02ac0c361e8/api/config/crd/projectcalico.org_tiers.yaml",
        "0c9667d81fbe3e51d6c182d2e9c545a44c47b7cef503c3160f0594f26a036018",
    ),
    (
        "cis/chart/Chart.yaml",
        f"{RAW}/F5Networks/k8s-bigip-ctlr/5274779dbfd5184b5389bc535f2d64b24164e6da/helm-charts/f5-bigip-ctlr/Chart.yaml",
        "b597d34ccb137994eb47ba0b2bb7b319b3c231734c56f6081f8a324d61604ed0",
    ),
    (
        "cis/chart/sample-helm-values-k8s.yaml",
        f"{RAW}/F5Networks/k8s-bigip-ctlr/5274779dbfd5184b5389bc535f2d64b24164e6da/docs/config_examples/Install/k8s/sample-helm-values.yaml",
        "8e7c483435ebc1ca557fc236107823b725b803082c6f4712a15458c642495033",
    ),
    (
        "cis/chart/values.yaml",
        f"{RAW}/F5Networks/k8s-bigip-ctlr/5274779dbfd5184b5389bc535f2d64b24164e6da/helm-charts/f5-bigip-ctlr/values.yaml",
        "adfc211a7b15d9d3c82bd7a4557211fd53e84b6ebe49719c2ec5ce18030cf413",
    ),
    (
        "cis/crds.yaml",
        f"{RAW}/F5Networks/k8s-bigip-ctlr/5274779dbfd5184b5389bc535f2d64b24164e6da/docs/config_examples/customResourceDefinitions/customresourcedefinitions.yml",
        "3ad9fad4c85c3b8fceba967fe3010ee08f7050732bfadf04b642ec8be8d48323",
    ),
    (
        "f5/as3-per-app-schema.json",
        f"{RAW}/F5Networks/f5-appsvcs-extension/05efc34c9441402d1f2c591086977bb01a752673/schema/3.56.0/per-app-schema.json",
        "d50ddc0bf02f9db377e895a93fb5c985f8dde5aa23245c43a9f32a93f92d150f",
    ),
    (
        "f5/as3-schema.json",
        f"{RAW}/F5Networks/f5-appsvcs-extension/05efc34c9441402d1f2c591086977bb01a752673/schema/3.56.0/as3-schema.json",
        "32036748396aa5da6131d1441d3928d03320daae78eb4ce50d3b98e03345deb7",
    ),
    (
        "f5/do/analytics.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/analytics.schema.json",
        "92d7cc1635091fe3832f5d0d1f85bb326fcb96497b866347ad650e3a56c0df90",
    ),
    (
        "f5/do/auth.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/auth.schema.json",
        "6addce85193c28b65b35ae47828b7bd4fd59a068a0c2380862881b9295babd28",
    ),
    (
        "f5/do/base.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/base.schema.json",
        "662860ce6fabadc968a3e9fe02da4c5bf23de454ea9949e21def046c48fb733a",
    ),
    (
        "f5/do/definitions.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/definitions.schema.json",
        "f7e3744ff3fb8379c30ebb4d28ee3b39a442736d9c3e7c54b5a58ebb5eb40a85",
    ),
    (
        "f5/do/do.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/do.schema.json",
        "89acb4e401e9d8461a067e0f66573f14f3ddf468a02ca8b4b69d0e7f1a906d32",
    ),
    (
        "f5/do/dsc.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/dsc.schema.json",
        "f51feea98f9251ebaa7e784435025be9456f314ecb181d402a55d9dacefc5e2f",
    ),
    (
        "f5/do/gslb.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/gslb.schema.json",
        "0cb6ecae889407464007d7986633e46feba95c76d823ccf4b09217a41e7c4c54",
    ),
    (
        "f5/do/network.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/network.schema.json",
        "b4a225f70e8f64b42f1f3874981284712cc0087d04f3d432b0fa810b95f61cb8",
    ),
    (
        "f5/do/openapi.yaml",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/openapi.yaml",
        "5ba8a95875b1d2930b56b304e2e805299243a58191428613274436ef2b504910",
    ),
    (
        "f5/do/remote.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/remote.schema.json",
        "a00462f961e80943af69f1743dd24402264e9b55f9e759657dc409eea178da13",
    ),
    (
        "f5/do/security.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/security.schema.json",
        "c779223124e409b62da3079445376db2f539970fe1f0af9680d9af2bf1ed165e",
    ),
    (
        "f5/do/system.schema.json",
        f"{RAW}/F5Networks/f5-declarative-onboarding/4ef431d8cc7958edea35cedd16ff1a84d00eb72b/src/schema/latest/system.schema.json",
        "f8f61383178e0c458d11b40238914bdcd0abc4980d39221eec4b0af81054d1ee",
    ),
    (
        "istio/chart/base/Chart.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/base/Chart.yaml",
        "a52b0f3786932dac321471db526bad1247feac170933e8d90fecb942aba7d13d",
    ),
    (
        "istio/chart/base/values.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/base/values.yaml",
        "3543b89cb620ad6f8cfab3910cdf3e5d1f4af8d73d30cb73b3b36c65d3da6f56",
    ),
    (
        "istio/chart/gateway/Chart.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/gateway/Chart.yaml",
        "9f69b224986606d98a193537a9becc3f3228f757205e4620d0d9b58340627f94",
    ),
    (
        "istio/chart/gateway/values.schema.json",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/gateway/values.schema.json",
        "6a58a62ea7417ed4e7dd18d25d0a674ce888a18d4b44fc832e876e2d7aa7c1f6",
    ),
    (
        "istio/chart/gateway/values.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/gateway/values.yaml",
        "fa272809ac6991894a9ed0ad8c84995af0a65a1262ed040bf9b987f7ca8ca7b5",
    ),
    (
        "istio/chart/istiod/Chart.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/istio-control/istio-discovery/Chart.yaml",
        "7d387c74d04462b1d63cc8d26468ef6f13434b156ee129ad6716d894658405d5",
    ),
    (
        "istio/chart/istiod/values.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/istio-control/istio-discovery/values.yaml",
        "d6b9d64100f695973a1b87a2cedfce597669807d77fd14d00149d56538dd43a1",
    ),
    (
        "istio/crds-1.21.6.yaml",
        f"{RAW}/istio/istio/82f36589b0dacb7c5429d01661f094be9d4531c0/manifests/charts/base/crds/crd-all.gen.yaml",
        "886b7ede6b4b8a6744256e8f8286c91afdf5dc7e624a4df650d6c83eb018e16f",
    ),
    (
        "istio/crds.yaml",
        f"{RAW}/istio/istio/56df41f63e513f834c9a3af33d8aed82d1d961f2/manifests/charts/base/files/crd-all.gen.yaml",
        "dcb43ff6b9af2f629b80b6a82597f5a91db259c757e66cc5353ac007da28351a",
    ),
    (
        "nginx/chart/Chart.yaml",
        f"{RAW}/nginx/kubernetes-ingress/f92a24e4fd2b52c72739c4a1f4f9bb6424bf5731/charts/nginx-ingress/Chart.yaml",
        "d88de6dbfefebbb0f04b34fd04e558bbd08b8ccb7b18cb22e0fd287c6f370205",
    ),
    (
        "nginx/chart/values.schema.json",
        f"{RAW}/nginx/kubernetes-ingress/f92a24e4fd2b52c72739c4a1f4f9bb6424bf5731/charts/nginx-ingress/values.schema.json",
        "49a1b1a68c6a79dc0f923f557cc778ec0e56d2835389c649163114910e56bd4c",
    ),
    (
        "nginx/chart/values.yaml",
        f"{RAW}/nginx/kubernetes-ingress/f92a24e4fd2b52c72739c4a1f4f9bb6424bf5731/charts/nginx-ingress/values.yaml",
        "707c58314858b3bd6838f1386422690802726adb4e71b3f41b7085624175cef0",
    ),
    (
        "nginx/crds.yaml",
        f"{RAW}/nginx/kubernetes-ingress/f92a24e4fd2b52c72739c4a1f4f9bb6424bf5731/deploy/crds.yaml",
        "9a79a8233162a61fc16820c17c62ec6c33f2c1666b69814f30603ef4e0b93098",
    ),
)

# dest, sha256 of the concatenation, components (upstream path, url, sha256) in build order.
GATEWAY_API_BUNDLES: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "gateway-api/crds-v1.6.1.yaml",
        "28f7653195d1561089da78326bb0d94078a3545859070c4d3398ceb3b58a9456",
        (
            (
                "config/crd/standard/gateway.networking.k8s.io_backendtlspolicies.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_backendtlspolicies.yaml",
                "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
                "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
                "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
                "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
                "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_listenersets.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_listenersets.yaml",
                "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
                "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_tcproutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_tcproutes.yaml",
                "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml",
                "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_udproutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_udproutes.yaml",
                "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3/config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml",
                "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e",
            ),
        ),
    ),
    (
        "gateway-api/crds.yaml",
        "935453ed7bdab348e1d343ea9dc17987f4c0f65bf43b64717486645bbd51d3c7",
        (
            (
                "config/crd/standard/gateway.networking.k8s.io_backendtlspolicies.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_backendtlspolicies.yaml",
                "9b8818172153d72f9c84032db0be0a4a657277d13f5bbc22226ad9481ff57971",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
                "234ad4b2757ee1b3596a4187bb98df071c5bbdd9e1806f692f2dbf8387e6bef4",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
                "7416e8300eb4d8c0a71a23445609075bbacbe8bc80104584b019cfe1ebe77c31",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
                "979f4125d44d3df24659ba00d1d04ff8e76c45423193e8aae82dd5810d7827df",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
                "682203b109baecb18d38073a578f7bc2c17d22fe9b0c27bf030850abe014c370",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_listenersets.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_listenersets.yaml",
                "9221468d19fdfbb0026113b1ef64abac64f27607975aff2410361b8b38f0e0bb",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
                "a8902c486eed0b7339f5bb8a476ccaba0918eb038048402bdc01cbb69b0fbb51",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml",
                "818e4827c469a40e2527a2851591e656782c50fea8dd44812c900d219da09345",
            ),
            (
                "config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml",
                f"{RAW}/kubernetes-sigs/gateway-api/e7677b70ae75d14a4448fba94870e7deea6cf0ad/config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml",
                "981a4da92706cb567c051e006ff229429947f054b90cd0719c297abe14f958a1",
            ),
        ),
    ),
)


class ChecksumError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(url: str, base_url: str | None, timeout: float) -> bytes:
    if base_url is not None and url.startswith(RAW):
        url = base_url.rstrip("/") + url[len(RAW) :]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read()
    except OSError as exc:  # URLError/HTTPError are OSErrors; name the file that failed
        raise OSError(f"fetching {url}: {exc}") from exc
    return data


def _check(data: bytes, sha256: str, what: str) -> bytes:
    actual = _sha256(data)
    if actual != sha256:
        raise ChecksumError(f"{what}: sha256 {actual} does not match the pinned {sha256}")
    return data


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _bundle_header(path: str) -> bytes:
    return f"---\n#\n# {path}\n#\n".encode()


def fill(
    dest: Path,
    *,
    base_url: str | None = None,
    files: Sequence[tuple[str, str, str]] = PINNED,
    bundles: Sequence[tuple[str, str, Sequence[tuple[str, str, str]]]] = GATEWAY_API_BUNDLES,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Download every pinned file into dest (files already present with the right sha256 are kept).

    base_url replaces https://raw.githubusercontent.com (tests, mirrors). Raises ChecksumError or
    OSError on the first failure; files verified before it stay, the failing one is not written.
    Returns the relative paths now in dest.
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).unlink(missing_ok=True)  # incomplete until everything below succeeded
    done: list[tuple[str, str]] = []

    def wanted(rel: str, sha256: str) -> bool:
        target = dest / rel
        if target.is_file() and _sha256(target.read_bytes()) == sha256:
            echo(f"ok       {rel}")
            done.append((rel, sha256))
            return False
        return True

    for rel, url, sha256 in files:
        if wanted(rel, sha256):
            _write_atomic(dest / rel, _check(_fetch(url, base_url, timeout), sha256, f"{rel} ({url})"))
            echo(f"fetched  {rel}")
            done.append((rel, sha256))
    for rel, sha256, parts in bundles:
        if wanted(rel, sha256):
            chunks = [
                _bundle_header(path) + _check(_fetch(url, base_url, timeout), part_sha, f"{rel}: {url}")
                for path, url, part_sha in parts
            ]
            _write_atomic(dest / rel, _check(b"".join(chunks), sha256, f"{rel} (concatenation)"))
            echo(f"built    {rel}")
            done.append((rel, sha256))
    _write_atomic(dest / MANIFEST, _manifest(sorted(done)).encode())
    return sorted(rel for rel, _ in done)


def _manifest(entries: Iterable[tuple[str, str]]) -> str:
    lines = [
        "# Schema cache",
        "",
        "Filled by `python -m tools.schemas` from pinned upstream commits; every file matched its sha256.",
        "",
        "| file | sha256 |",
        "|---|---|",
    ]
    lines += [f"| `{rel}` | `{sha256}` |" for rel, sha256 in entries]
    return "\n".join(lines) + "\n"


def ensure(base_url: str | None = None) -> int:
    """`make test`'s first step: use the schema folder the render would find, else fill the
    cache; when it cannot (offline), one line saying how to point CPAAS_SCHEMAS at a copy."""
    from tools.validate import ENV_VAR, resolve_schema_dir

    found = resolve_schema_dir(None)
    if found is not None and (found / MANIFEST).is_file():
        print(f"schemas: using {found}")
        return 0
    if os.environ.get(ENV_VAR):
        print(
            f"schemas: {ENV_VAR}={found} holds no {MANIFEST}; point it at a complete copy of the "
            "schema folder",
            file=sys.stderr,
        )
        return 1
    dest = default_cache_dir()
    try:
        fill(dest, base_url=base_url, timeout=20, echo=lambda _line: None)
    except (ChecksumError, OSError) as exc:
        print(
            f"schemas: no schema folder here (no {ENV_VAR}, no ../shared/schemas, no complete cache in "
            f"{dest}) and fetching the pinned files failed ({' '.join(str(exc).split())}); offline, "
            f"set {ENV_VAR} to a copy of the schema folder (the one holding {MANIFEST})",
            file=sys.stderr,
        )
        return 1
    print(f"schemas: fetched and verified the pinned files into {dest}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    description = "Fill the schema cache from pinned, sha256-checked upstream files."
    parser = argparse.ArgumentParser(prog="python -m tools.schemas", description=description)
    parser.add_argument("--dest", type=Path, help=f"target folder (default {default_cache_dir()})")
    parser.add_argument("--base-url", default=None, help=f"mirror to use instead of {RAW}")
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="only when no schema folder is found ($CPAAS_SCHEMAS, ../shared/schemas, the cache)",
    )
    args = parser.parse_args(argv)
    if args.if_missing:
        return ensure(args.base_url)
    dest = args.dest if args.dest is not None else default_cache_dir()
    try:
        fill(dest, base_url=args.base_url)
    except (ChecksumError, OSError) as exc:
        print(f"schemas: FAILED: {exc}", file=sys.stderr)
        print(f"schemas: {dest} is incomplete (no {MANIFEST}); nothing unverified was kept", file=sys.stderr)
        return 1
    print(f"schemas: {len(PINNED) + len(GATEWAY_API_BUNDLES)} files verified in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
