#!/bin/sh
#  The init service of compose.yml: makes the stack's CURVE keys once, into one volume per
#  service, so that each container holds its own secret key and no other:
#    /keys/broker  broker.key_secret, broker.key, health.key_secret (the health check's admin
#                  key) and public/, the public files of the keys the broker lets in
#    /keys/echo    echo.key_secret   (--serve echo)                        and broker.key
#    /keys/stage   stage.key_secret  (--pull numbers --push squares)       and broker.key
#    /keys/kv      kv.key_secret     (--serve kv), shared by the three replicas, and broker.key
#    /keys/client  client.key_secret (--call echo,kv --push numbers --pull squares --admin)
#                  and broker.key, for the client container and, copied out, the host
#  When every file is there it changes nothing; when any is missing (a first run, or one
#  interrupted) it makes the whole set again, so that the keys always belong together.
set -eu

dir=/keys
needed="broker/broker.key broker/broker.key_secret broker/health.key_secret
        broker/public/health.key broker/public/echo.key broker/public/stage.key
        broker/public/client.key broker/public/kv.key echo/echo.key_secret echo/broker.key
        kv/kv.key_secret kv/broker.key
        stage/stage.key_secret stage/broker.key client/client.key_secret client/broker.key"
missing=""
for file in $needed; do
    [ -f "$dir/$file" ] || missing="$missing $file"
done
if [ -z "$missing" ]; then
    echo "zmesh-init-keys: the keys exist; nothing to do"
    exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zmesh keygen broker --dir "$work" >/dev/null
zmesh keygen health --dir "$work" --admin >/dev/null
zmesh keygen echo --dir "$work" --serve echo >/dev/null
zmesh keygen stage --dir "$work" --pull numbers --push squares >/dev/null
zmesh keygen kv --dir "$work" --serve kv >/dev/null
zmesh keygen client --dir "$work" --call echo,kv --push numbers --pull squares --admin >/dev/null

#  Old public files would let old keys in: the keys directory holds this set and nothing else.
rm -rf "$dir/broker/public"
mkdir -p "$dir/broker/public"
cp "$work/health.key" "$work/echo.key" "$work/stage.key" "$work/client.key" "$work/kv.key" \
    "$dir/broker/public/"
cp "$work/broker.key" "$work/broker.key_secret" "$work/health.key_secret" "$dir/broker/"
for name in echo stage client kv; do
    cp "$work/$name.key_secret" "$work/broker.key" "$dir/$name/"
done
cp "$work/client.key" "$dir/client/"
chmod 600 "$dir"/*/*.key_secret
chmod 644 "$dir"/*/*.key "$dir"/broker/public/*.key
echo "zmesh-init-keys: made the keys broker, health, echo, stage, kv and client"
