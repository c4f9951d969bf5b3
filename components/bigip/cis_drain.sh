# cpaas: on deletion, waits until CIS has applied the change that lets an object be deleted:
# - without CPAAS_DRAIN_REFERENCE (the unit's drain): until CIS has removed its virtual servers from
#   its BIG-IP partition, so what they reference can be deleted, and CIS after them;
# - with CPAAS_DRAIN_REFERENCE=<BIG-IP path> (one re-encrypt profile or WAF policy): until nothing
#   on the BIG-IP names that path any more: no virtual server (with its profiles) in any partition,
#   and no rule of an LTM policy in the CIS partition (AS3 attaches a WAF policy through one).
# Environment (components/bigip/drain.py): CPAAS_BIGIP_URL, CPAAS_BIGIP_USER, CPAAS_BIGIP_PASSWORD,
# CPAAS_BIGIP_CA_PEM (empty: no verification, as the unit's insecureSkipVerify), CPAAS_CIS_PARTITION,
# CPAAS_DRAIN_REFERENCE, CPAAS_CIS_NAMESPACE and CPAAS_CIS_DEPLOYMENT (for the message),
# CPAAS_DRAIN_TIMEOUT and CPAAS_DRAIN_INTERVAL (seconds). From the operator's shell:
# CPAAS_SKIP_CIS_DRAIN=<partition> deletes without waiting (CIS is gone or broken).
set -u
partition=$CPAAS_CIS_PARTITION
reference=${CPAAS_DRAIN_REFERENCE:-}
if [ "${CPAAS_SKIP_CIS_DRAIN:-}" = "$partition" ]; then
    echo "cpaas: CPAAS_SKIP_CIS_DRAIN=$partition: not waiting for CIS to drain" \
        "$partition${reference:+ of $reference}" >&2
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

# Prints the body of an iControl REST GET (the path after the URL), or curl's error and fails.
get() {
    local body
    body=$(credentials | curl --silent --show-error --fail --max-time 30 "${tls[@]}" --config - \
        "$CPAAS_BIGIP_URL$1" 2>&1) || {
        printf '%s' "$body"
        return 1
    }
    printf '%s' "$body"
}

# Prints the fullPath values in the CIS partition (in any folder) of a collection.
in_partition() {
    grep -o "\"fullPath\" *: *\"/$partition/[^\"]*\"" | sed 's/^"fullPath" *: *"//; s/"$//'
}

# Prints how many virtual servers the partition holds, or fails with curl's error.
virtuals_left() {
    local body
    body=$(get "/mgmt/tm/ltm/virtual?\$select=fullPath") || {
        printf '%s' "$body"
        return 1
    }
    printf '%s' "$body" | in_partition | wc -l | tr -d ' '
}

# Prints how many times the BIG-IP still names $reference (a whole JSON string, so a longer name
# that starts alike is not counted), or fails with curl's error.
references_left() {
    local body count policies policy
    body=$(get "/mgmt/tm/ltm/virtual?expandSubcollections=true") || {
        printf '%s' "$body"
        return 1
    }
    count=$(printf '%s' "$body" | grep -oF "\"$reference\"" | wc -l)
    policies=$(get "/mgmt/tm/ltm/policy?\$select=fullPath") || {
        printf '%s' "$policies"
        return 1
    }
    while read -r policy; do
        [ -n "$policy" ] || continue
        body=$(get "/mgmt/tm/ltm/policy/${policy//\//\~}/rules?expandSubcollections=true") || {
            printf '%s' "$body"
            return 1
        }
        count=$((count + $(printf '%s' "$body" | grep -oF "\"$reference\"" | wc -l)))
    done <<<"$(printf '%s' "$policies" | in_partition)"
    echo "$((count))"
}

deadline=$((SECONDS + CPAAS_DRAIN_TIMEOUT))
while :; do
    if [ -z "$reference" ]; then
        if left=$(virtuals_left); then
            if [ "$left" -eq 0 ]; then
                echo "cpaas: CIS has no virtual server left in partition $partition"
                exit 0
            fi
            state="partition $partition still holds $left virtual server(s)"
        else
            state="cannot list the virtual servers of partition $partition: $left"
        fi
        waited="CIS did not drain"
    else
        if left=$(references_left); then
            if [ "$left" -eq 0 ]; then
                echo "cpaas: no virtual server or LTM policy of partition $partition names $reference"
                exit 0
            fi
            state="the BIG-IP still holds $left reference(s) to it"
            state="$state (virtual servers, LTM policies of $partition)"
        else
            state="cannot list what references it: $left"
        fi
        waited="CIS did not release $reference"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "cpaas: $waited within ${CPAAS_DRAIN_TIMEOUT}s: $state. Check CIS" \
            "(kubectl -n $CPAAS_CIS_NAMESPACE logs deploy/$CPAAS_CIS_DEPLOYMENT) and run again; to" \
            "delete without waiting, set CPAAS_SKIP_CIS_DRAIN=$partition" >&2
        exit 1
    fi
    sleep "$CPAAS_DRAIN_INTERVAL"
done
