'use strict';
// ali-ons push consumer (clustering) for the failover test: consume.js's lines, plus the route
// refresh period as an option.
//
//   node failover_consumer.js --namesrv 127.0.0.1:9876 --topic T --group G \
//        --poll-name-server-interval 1000
//
// Lines: "started"; "message" per delivery (body, keys, broker, queueId, queueOffset, msgId,
// reconsumeTimes, at: wall-clock ms); "client_error" for what the client reports (e.g. a pull
// that failed against a dead broker); "stopped" on SIGTERM (exit 0); "deadline" (exit 3).
//
// ali-ons options used: pollNameServerInteval (sic; default 30000 ms), rebalanceInterval
// (default 10000 ms), heartbeatBrokerInterval (default 30000 ms), persistConsumerOffsetInterval
// (default 5000 ms), consumeFromWhere CONSUME_FROM_FIRST_OFFSET.

const { Consumer } = require('ali-ons');
const { parseArgs, emit, describeError, makeLogger, httpclient, exit } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    namesrv: null,
    topic: null,
    group: null,
    deadline: 120,
    pollNameServerInterval: 30000,
    rebalanceInterval: 1000,
    heartbeatBrokerInterval: 30000,
    persistConsumerOffsetInterval: 5000,
  });
  const consumer = new Consumer({
    httpclient,
    nameSrv: args.namesrv.split(';'),
    consumerGroup: args.group,
    logger: makeLogger(),
    pollNameServerInteval: args.pollNameServerInterval,
    rebalanceInterval: args.rebalanceInterval,
    heartbeatBrokerInterval: args.heartbeatBrokerInterval,
    persistConsumerOffsetInterval: args.persistConsumerOffsetInterval,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
  });
  consumer.on('error', err => emit('client_error', Object.assign({ at: Date.now() }, describeError(err))));

  consumer.subscribe(args.topic, '*', async (msg, mq) => {
    emit('message', {
      body: msg.body ? msg.body.toString('utf8') : null,
      keys: msg.keys || null,
      msgId: msg.msgId,
      broker: mq && mq.brokerName,
      queueId: msg.queueId,
      queueOffset: Number(msg.queueOffset),
      reconsumeTimes: msg.reconsumeTimes,
      at: Date.now(),
    });
  });

  let stopping = false;
  const stop = async (reason, code) => {
    if (stopping) {
      return;
    }
    stopping = true;
    const hardStop = setTimeout(() => {
      emit('stopped', { reason, clean: false });
      exit(code);
    }, 10000);
    try {
      await consumer.close();
    } catch (err) {
      emit('client_error', describeError(err));
    }
    clearTimeout(hardStop);
    emit('stopped', { reason, clean: true });
    exit(code);
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  setTimeout(() => {
    emit('deadline', { seconds: args.deadline });
    stop('deadline', 3);
  }, args.deadline * 1000);

  await consumer.ready();
  emit('started', {
    clientId: consumer.clientId,
    group: args.group,
    topic: args.topic,
    pollNameServerInteval: args.pollNameServerInterval,
  });
}

main().catch(err => {
  emit('fatal', describeError(err));
  process.stderr.write(`${err && err.stack}\n`);
  exit(2);
});
