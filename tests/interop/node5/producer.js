'use strict';
// node producer.js ENDPOINT TOPIC COUNT [--tag T] [--group G] [--delay-ms N] [--body-prefix P]
//   [--also T2,T3]   (more topics named at construction: its startup's settings race)
//   [--lite L1,L2]   (lite messages: message i to lite topic L<i mod n>, body P<lite>:<i>)
//   [--priorities 3,1,2]   (priority messages: message i with priority <i mod n>)
// Sends COUNT messages (body P<i>, keys k<i> and kk<i>, property seq=<i>) through RocketMQ 5's
// Node.js Producer; prints started, one sent line per message (message_id, offset, due_ms),
// done. Exit 1 (an error line) when startup or a send fails. The offset is in the queue the
// proxy chose (the receipt's own queue is the one the client picked, not where it was stored).
//
// With --also, the producer is told more topics at construction: 1.0.8's startup() then waits
// for a settings answer that came too early (docs/proxy.md, "Node.js client notes"); the
// started line says how long it took (startup_ms).

const { Producer } = require('rocketmq-client-nodejs');
const { parseArgs, emit, exit, fail, clientOptions } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), [ 'endpoint', 'topic', 'count' ], {
    tag: 'TagA',
    group: '',
    delayMs: 0,
    bodyPrefix: 'body-',
    also: '',
    lite: [],
    priorities: [],
  });
  const topics = [ args.topic, ...args.also.split(',').filter(Boolean) ];
  const producer = new Producer({ ...clientOptions(args.endpoint), topics });
  const begun = Date.now();
  await producer.startup();
  emit('started', { client_id: producer.clientId, startup_ms: Date.now() - begun });
  try {
    for (let i = 0; i < Number(args.count); i++) {
      const due = args.delayMs ? Date.now() + args.delayMs : null;
      const lite = args.lite.length ? args.lite[i % args.lite.length] : null;
      const receipt = await producer.send({
        topic: args.topic,
        body: Buffer.from(lite ? `${args.bodyPrefix}${lite}:${i}` : `${args.bodyPrefix}${i}`),
        ...(lite ? { liteTopic: lite } : {}),
        ...(args.priorities.length
          ? { priority: Number(args.priorities[i % args.priorities.length]) }
          : {}),
        tag: args.tag,
        keys: [ `k${i}`, `kk${i}` ],
        properties: new Map([[ 'seq', String(i) ]]),
        ...(args.group ? { messageGroup: args.group } : {}),
        ...(due ? { deliveryTimestamp: new Date(due) } : {}),
      });
      emit('sent', {
        i,
        message_id: receipt.messageId,
        offset: receipt.offset,
        due_ms: due,
      });
    }
  } finally {
    await producer.shutdown();
  }
  emit('done');
}

main().then(() => exit(0), fail);
