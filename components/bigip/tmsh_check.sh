# cpaas: fails this step when a tmsh command's stored output is a tmsh error.
# The f5bigip provider runs each command through util/bash and stores what it printed without
# looking at it, so a command the BIG-IP refused would otherwise pass as a successful step.
# Environment (components/bigip/tmsh_check.py): CPAAS_CHECK_WHAT, CPAAS_CHECK_URN (the command
# resource), CPAAS_CHECK_COUNT, and per command i: CPAAS_CHECK_COMMAND_i, CPAAS_CHECK_OUTPUT_i.
set -u
# tmsh errors: an F5 message code ("01070734:3: ..."), "Syntax Error", a line whose first words
# end in "Error:" ("Error: ...", "Data Input Error: ...", "Unexpected Error: ..."), or tmsh's
# usage text, which it prints instead of running a command it could not parse. Not "Errors: 0".
# Ref: F5Networks/f5-ansible@da26e796 (1.34.1) ansible_collections/f5networks/f5_modules/plugins/
#      modules/bigip_command.py ("Data Input Error:", "usage: tmsh"),
#      modules/bigip_config.py ("Unexpected Error:")
pattern='(^|[^[:alnum:]_])[0-9a-f]{8}:[0-9]+:|Syntax Error|^[A-Za-z ]*Error:|Unexpected Error:|usage: tmsh'
failed=""
i=0
while [ "$i" -lt "$CPAAS_CHECK_COUNT" ]; do
    command_var="CPAAS_CHECK_COMMAND_$i"
    output_var="CPAAS_CHECK_OUTPUT_$i"
    if [ -z "${!output_var+set}" ]; then
        failed="$failed; '${!command_var}': no output was recorded"
    elif printf '%s\n' "${!output_var}" | grep -Eq "$pattern"; then
        output=$(printf '%s' "${!output_var}" | tr -s '[:space:]' ' ' | cut -c1-280)
        failed="$failed; '${!command_var}': ${output% }"
    fi
    i=$((i + 1))
done
if [ -n "$failed" ]; then
    echo "cpaas: $CPAAS_CHECK_WHAT failed on the BIG-IP: ${failed#; }. Fix the cause, then run" \
        "the commands again with: pulumi up --replace '$CPAAS_CHECK_URN'" >&2
    exit 1
fi
echo "cpaas: $CPAAS_CHECK_WHAT: no tmsh error in the output of $CPAAS_CHECK_COUNT command(s)"
