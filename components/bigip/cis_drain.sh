# cpaas: on deletion, waits until CIS has removed its virtual servers from its BIG-IP partition,
# so what they reference (re-encrypt profiles, WAF policies) can be deleted, and CIS after them.
# Environment (components/bigip/drain.py): CPAAS_BIGIP_URL, CPAAS_BIGIP_USER, CPAAS_BIGIP_PASSWORD,
# CPAAS_BIGIP_CA_PEM (empty: no verification, as the unit's insecureSkipVerify), CPAAS_CIS_PARTITION,
# CPAAS_CIS_NAMESPACE and CPAAS_CIS_DEPLOYMENT (for the message), CPAAS_DRAIN_TIMEOUT and
# CPAAS_DRAIN_INTERVAL (seconds). From the operator's shell:
# CPAAS_SKIP_CIS_DRAIN=<partition> deletes without waiting (CIS is gone or broken).
set -u
partition=$CPAAS_CIS_PARTITION
if [ "${CPAAS_SKIP_CIS_DRAIN:-}" = "$partition" ]; then
    echo "cpaas: CPAAS_SKIP_CIS_DRAIN=$partition: not waiting for CIS to drain $partition" >&2
    exit 0
fi
for setting in CPAAS_DRAIN_TIMEOUT CPAAS_DRAIN_INTERVAL; do
    if ! [[ ${!setting} =~ ^[0-9]+$ ]]; then
        echo "cpaas: $setting='${!setting}' is not a number of seconds" >&2
        exit 2
    fi
done
if [ -n "$CPAAS_BIGIP_CA_PEM" ]; then
    ca=$(mktemp)
    trap 'rm -f "$ca"' EXIT
    printf '%s\n' "$CPAAS_BIGIP_CA_PEM" >"$ca"
    tls=(--cacert "$ca")
else
    tls=(--insecure)
fi

# curl reads its options from stdin, so the password is never on a command line.
credentials() {
    local user="$CPAAS_BIGIP_USER:$CPAAS_BIGIP_PASSWORD"
    user=${user//\\/\\\\}
    user=${user//\"/\\\"}
    printf 'user = "%s"\n' "$user"
}

# Prints how many virtual servers the partition holds (in any folder), or fails with curl's error.
virtuals_left() {
    local body
    body=$(credentials | curl --silent --show-error --fail --max-time 30 "${tls[@]}" --config - \
        "$CPAAS_BIGIP_URL/mgmt/tm/ltm/virtual?\$select=fullPath" 2>&1) || {
        printf '%s' "$body"
        return 1
    }
    printf '%s' "$body" | grep -o "\"fullPath\" *: *\"/$partition/[^\"]*\"" | wc -l | tr -d ' '
}

deadline=$((SECONDS + CPAAS_DRAIN_TIMEOUT))
while :; do
    if left=$(virtuals_left); then
        if [ "$left" -eq 0 ]; then
            echo "cpaas: CIS has no virtual server left in partition $partition"
            exit 0
        fi
        state="partition $partition still holds $left virtual server(s)"
    else
        state="cannot list the virtual servers of partition $partition: $left"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "cpaas: CIS did not drain within ${CPAAS_DRAIN_TIMEOUT}s: $state. Check CIS" \
            "(kubectl -n $CPAAS_CIS_NAMESPACE logs deploy/$CPAAS_CIS_DEPLOYMENT) and run again; to" \
            "delete without waiting, set CPAAS_SKIP_CIS_DRAIN=$partition" >&2
        exit 1
    fi
    sleep "$CPAAS_DRAIN_INTERVAL"
done
