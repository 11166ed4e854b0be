#!/bin/sh
# Starts concert-http-server on the embedded memory backend with the demo
# concert and prints how to try it. Used by scripts/run.
#   examples/http_server/run-demo.sh PATH/TO/concert-http-server [server flags...]
# CONCERT_LISTEN picks the address (127.0.0.1:8080).
set -eu
server=${1:?usage: run-demo.sh PATH/TO/concert-http-server [flags...]}
shift
listen=${CONCERT_LISTEN:-127.0.0.1:8080}
url=http://$listen
cat <<HELP
concert-http-server: $url (memory backend, demo concert: 2 schedules x 50 seats)
Open $url/ in a browser for the seat map, or try it with curl:

  curl -s $url/v1/concerts
  curl -s $url/v1/concerts/1/schedules
  curl -s $url/v1/schedules/1/seats
  TOKEN=\$(curl -s -X POST $url/v1/queue/tokens -d '{"userId":"alice","concertId":1}' \\
          | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s -X POST $url/v1/holds -H "X-QUEUE-TOKEN: \$TOKEN" -d '{"scheduleId":1,"seatNos":[11,12]}'
  curl -s -X POST $url/v1/wallets/alice/charge -H 'Idempotency-Key: top-up-1' -d '{"amount":300000}'
  curl -s -X POST $url/v1/payments -H "X-QUEUE-TOKEN: \$TOKEN" -H 'Idempotency-Key: pay-1' -d '{"holdId":1}'
  curl -s $url/v1/wallets/alice
  curl -s $url/health; curl -s $url/metrics | head

API: docs/http.md. The access log follows on stdout; Ctrl-C stops the server.

HELP
exec "$server" --demo --listen "$listen" "$@"
