#!/bin/sh
#  The image's health check: healthy when the broker answers `zmesh status`.
#  The broker asked is $ZMESH_HEALTH_BROKER, by default the one in this container
#  (tcp://127.0.0.1:5555). A broker that runs CURVE answers only an --admin key: give its
#  secret file in $ZMESH_HEALTH_SECRET and the broker's public key (file or Z85 text) in
#  $ZMESH_HEALTH_BROKER_KEY. The container's own ZMESH_CURVE_SECRET is not used: in the
#  broker's container it is the broker's key, not a client's.
unset ZMESH_CURVE_SECRET ZMESH_BROKER_KEY
broker=${ZMESH_HEALTH_BROKER:-tcp://127.0.0.1:5555}
if [ -n "${ZMESH_HEALTH_SECRET:-}" ]; then
    exec zmesh status --broker "$broker" --timeout 2000 \
        --curve-secret "$ZMESH_HEALTH_SECRET" --broker-key "${ZMESH_HEALTH_BROKER_KEY:-}" >/dev/null
fi
exec zmesh status --broker "$broker" --timeout 2000 >/dev/null
