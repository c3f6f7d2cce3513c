'use strict';
// Create a topic with ali-ons's own UPDATE_AND_CREATE_TOPIC call (what `mqadmin updateTopic` does),
// then wait until the name server routes it to every given broker.
//
//   node create_topic.js --namesrv 127.0.0.1:9876 --brokers 127.0.0.1:10911,127.0.0.1:10921 \
//        --topic T --queues 4
//
// ali-ons 3.12.0 cannot auto-create a topic: its producer throws TOPIC_NOT_EXIST from the first
// route lookup instead of falling back to the TBW102 route. The public API has no createTopic, so
// this goes through the client's MQClient (the same object the producer uses to send).
// Lines: "created" per broker, then "routed" (the route body) or "deadline" (exit 3).

const { Producer } = require('ali-ons');
const { parseArgs, emit, describeError, makeLogger, httpclient, exit, credentials } = require('./common');

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    namesrv: null,
    brokers: null,
    topic: null,
    queues: 4,
    deadline: 40,
    // RocketMQ's ACL: UPDATE_AND_CREATE_TOPIC needs an admin account's keys.
    accessKey: '',
    secretKey: '',
  });
  const deadline = Date.now() + args.deadline * 1000;
  const producer = new Producer({
    httpclient,
    nameSrv: args.namesrv.split(';'),
    producerGroup: 'actormq_interop_ons_admin',
    logger: makeLogger(),
    ...credentials(args),
  });
  producer.on('error', err => emit('client_error', describeError(err)));
  await producer.ready();
  const client = producer._mqClient;
  const brokers = args.brokers.split(',');
  for (const addr of brokers) {
    await client.createTopic(addr, 'TBW102', {
      topicName: args.topic,
      readQueueNums: args.queues,
      writeQueueNums: args.queues,
      perm: 6,
      topicFilterType: 'SINGLE_TAG',
      topicSysFlag: 0,
      order: false,
    }, 5000);
    emit('created', { broker: addr, topic: args.topic, queues: args.queues });
  }
  // The broker re-registers with the name server after a topic change; wait for the route.
  let lastError = null;
  while (Date.now() < deadline) {
    try {
      const route = await client.getTopicRouteInfoFromNameServer(args.topic, 3000);
      const routed = new Set();
      for (const data of (route && route.brokerDatas) || []) {
        for (const addr of Object.values(data.brokerAddrs || {})) {
          routed.add(addr);
        }
      }
      if (brokers.every(addr => routed.has(addr))) {
        emit('routed', { topic: args.topic, route });
        await producer.close();
        return 0;
      }
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  emit('deadline', Object.assign({ seconds: args.deadline }, lastError ? describeError(lastError) : {}));
  return 3;
}

main().then(
  code => exit(code),
  err => {
    emit('fatal', describeError(err));
    process.stderr.write(`${err && err.stack}\n`);
    exit(2);
  }
);
