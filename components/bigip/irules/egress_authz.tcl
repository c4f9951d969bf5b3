# cpaas egress gateway: admit a mesh workload only on its own X509-SVID, and SNAT it per app.
#
# Template: @TRUST_DOMAIN@, @DATA_GROUP@ and @ISSUER@ (the unit mesh CA's name as a Tcl list of
# "attr=value") are filled in per unit (components/bigip/irules).
# Policy is the string data group @DATA_GROUP@, so a policy change edits records, not this text:
#   name = namespace, data = "<service accounts separated by single spaces, or *>|<SNAT pool or empty>"
# A namespace with its own SNAT address has a SNAT pool holding that address alone (so no other
# app can leave with it); the others share the virtual server's SNAT pool.
# BIG-IP runs Tcl 8.4: no dict, lassign, {*}, in/ni, lmap, try, apply (tests/test_irule.py lints).
#
# Ref: https://clouddocs.f5.com/api/irules/CLIENTSSL_HANDSHAKE.html
# Ref: https://clouddocs.f5.com/api/irules/SSL__cert.html
# Ref: https://clouddocs.f5.com/api/irules/SSL__verify_result.html
# Ref: https://clouddocs.f5.com/api/irules/X509__extensions.html
# Ref: https://clouddocs.f5.com/api/irules/X509__issuer.html
# Ref: https://cdn.f5.com/product/bugtracker/ID607410.html (issuer text format from 13.0)
# Ref: https://clouddocs.f5.com/api/irules/class.html
# Ref: https://clouddocs.f5.com/api/irules/LB_SELECTED.html
# Ref: https://clouddocs.f5.com/api/irules/snatpool.html
# Ref: https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md (exactly one URI SAN)

when CLIENT_ACCEPTED {
    # Fail closed: nothing reaches the pool unless CLIENTSSL_HANDSHAKE admits this connection.
    set authz_allowed 0
    set authz_snatpool ""
    set authz_id "-"
}

when CLIENTSSL_HANDSHAKE {
    # A renegotiation runs this again: every handshake decides afresh.
    set authz_allowed 0
    set authz_snatpool ""
    set authz_id "-"
    set authz_deny ""
    set authz_uris {}
    set authz_san_problem ""

    if {[SSL::cert count] < 1} {
        set authz_deny "no client certificate"
    } else {
        # X509::extensions prints OpenSSL text: a header "X509v3 Subject Alternative Name:"
        # (": critical" when the subject is empty, as Istio issues it) and the entries on the
        # next, deeper-indented line, "URI:..., DNS:...". No fixed offsets: find the header.
        set authz_san_headers 0
        set authz_san_lines {}
        set authz_san_indent -1
        foreach authz_line [split [X509::extensions [SSL::cert 0]] "\n"] {
            set authz_text [string trim $authz_line]
            set authz_indent [expr {[string length $authz_line] - [string length [string trimleft $authz_line]]}]
            if {[string match "X509v3 Subject Alternative Name:*" $authz_text]} {
                incr authz_san_headers
                set authz_san_indent $authz_indent
            } elseif {$authz_san_indent >= 0 && $authz_indent > $authz_san_indent} {
                lappend authz_san_lines $authz_text
            } else {
                set authz_san_indent -1
            }
        }
        if {$authz_san_headers == 0} {
            set authz_san_problem "no subject alternative name"
        } elseif {$authz_san_headers > 1 || [llength $authz_san_lines] != 1} {
            # A second header or entry line can only come from a name with an embedded newline.
            set authz_san_problem "malformed subject alternative name"
        } else {
            foreach authz_entry [split [string map [list ", " "\n"] [lindex $authz_san_lines 0]] "\n"] {
                set authz_entry [string trim $authz_entry]
                if {[string match "URI:*" $authz_entry]} {
                    lappend authz_uris [string range $authz_entry 4 end]
                } elseif {![string match "DNS:*" $authz_entry] && ![string match "IP Address:*" $authz_entry]
                          && ![string match "email:*" $authz_entry]} {
                    # DirName, othername, ... print free text that could fake a ", URI:" entry.
                    set authz_san_problem "unsupported subject alternative name entry"
                }
            }
        }
        if {[llength $authz_uris] > 0} {
            set authz_id [join $authz_uris " "]
        }

        # Every unit's CA chains to the one org root, so TLS also admits a leaf from another
        # unit's CA, and a CA can put any trust domain in a leaf: the issuer must be this unit's
        # mesh CA. Compared as a set of "attr=value": TMOS 13.0+ prints the name in certificate
        # order joined by ", ", older versions reversed and joined by ","; the names cpaas issues
        # hold no character either form would quote or escape.
        set authz_issuer {}
        foreach authz_rdn [split [X509::issuer [SSL::cert 0]] ","] {
            lappend authz_issuer [string trim $authz_rdn]
        }

        # verify_result is 0 (X509_V_OK) also when no certificate was sent: count was checked first.
        set authz_verify [SSL::verify_result]
        if {$authz_verify != 0} {
            set authz_deny "certificate verification failed ($authz_verify)"
        } elseif {$authz_san_problem ne ""} {
            set authz_deny $authz_san_problem
        } elseif {[llength $authz_uris] != 1} {
            set authz_deny "expected exactly one URI SAN, found [llength $authz_uris]"
        } elseif {![regexp {^spiffe://([^/]+)/ns/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/sa/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$} \
                    [lindex $authz_uris 0] -> authz_td authz_ns authz_ns_tail authz_sa authz_sa_tail]} {
            set authz_deny "not a SPIFFE workload ID"
        } elseif {$authz_td ne "@TRUST_DOMAIN@"} {
            set authz_deny "foreign trust domain"
        } elseif {[lsort $authz_issuer] ne [lsort {@ISSUER@}]} {
            set authz_deny "not issued by this unit's mesh CA"
        } elseif {[string length $authz_ns] > 63 || [string length $authz_sa] > 63} {
            set authz_deny "not a SPIFFE workload ID"
        } elseif {![class match $authz_ns equals @DATA_GROUP@]} {
            set authz_deny "namespace not allowed"
        } else {
            set authz_policy [class lookup $authz_ns @DATA_GROUP@]
            set authz_bar [string first "|" $authz_policy]
            if {$authz_bar < 0} {
                set authz_deny "malformed policy record"
            } else {
                set authz_accounts [string range $authz_policy 0 [expr {$authz_bar - 1}]]
                if {$authz_accounts ne "*" && [lsearch -exact [split $authz_accounts " "] $authz_sa] < 0} {
                    set authz_deny "service account not allowed"
                } else {
                    set authz_snatpool [string trim [string range $authz_policy [expr {$authz_bar + 1}] end]]
                }
            }
        }
    }

    if {$authz_deny eq ""} {
        set authz_allowed 1
        set authz_via $authz_snatpool
        if {$authz_via eq ""} {
            set authz_via "virtual-server"
        }
        log local0. "egress-authz allow id=$authz_id snat=$authz_via client=[IP::client_addr]:[TCP::client_port]"
    } else {
        set authz_snatpool ""
        log local0. "egress-authz deny id=$authz_id reason=\"$authz_deny\" client=[IP::client_addr]:[TCP::client_port]"
        reject
    }
}

when LB_SELECTED {
    # Fail closed: only a connection the handshake admitted reaches the pool, also when the
    # handshake event never ran (no client-ssl profile, an earlier iRule, a skipped event).
    if {![info exists authz_allowed] || $authz_allowed != 1} {
        if {![info exists authz_id]} {
            set authz_id "-"
        }
        log local0. "egress-authz deny id=$authz_id reason=\"no authorisation decision\" client=[IP::client_addr]:[TCP::client_port]"
        reject
        return
    }
    # After the pool member is picked: the app's own SNAT pool; otherwise the virtual server's.
    if {$authz_snatpool ne ""} {
        snatpool $authz_snatpool
    }
}
