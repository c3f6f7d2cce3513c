'use strict';
// ali-ons producer: sends --count messages, one JSON line per send result, then a "done" line.
//
//   node producer.js --namesrv 127.0.0.1:9876 --topic T --group G --count 10 \
//        --tags TagA,TagB --prefix run1
//
// Message i has tags = tags[i % len(tags)], keys = "<prefix>-key-<i>" and "<prefix>-k2-<i>"
// (two keys, space separated on the wire), body = "<prefix> body <i>" (padded to --body-size).
// Exit code 0 only when every send returned a stored status; 3 when --deadline passes first.

const { Producer, Message } = require('ali-ons');
const { parseArgs, emit, describeError, makeLogger, httpclient, exit, credentials } = require('./common');

function padded(text, size) {
  let body = text;
  let n = 0;
  while (body.length < size) {
    body += ` ${n++} lorem ipsum dolor sit amet`;
  }
  return size ? body.slice(0, size) : body;
}

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    namesrv: null,
    topic: null,
    group: 'actormq_interop_ons_producer',
    count: 10,
    tags: 'TagA',
    prefix: 'ons',
    sendTimeout: 10000,
    deadline: 60,
    // Pad bodies to this many bytes (ali-ons compresses bodies of 4 KiB and more).
    bodySize: 0,
    delayLevel: 0,
    // ali-ons' namespace option: group and topics NS%<name> on the wire.
    namespace: '',
    // RocketMQ's ACL: sign every request with these keys (ali-ons adds OnsChannel=ALIYUN).
    accessKey: '',
    secretKey: '',
  });
  setTimeout(() => {
    emit('deadline', { seconds: args.deadline });
    exit(3);
  }, args.deadline * 1000).unref();
  const tags = args.tags.split(',');
  const producer = new Producer({
    httpclient,
    nameSrv: args.namesrv.split(';'),
    producerGroup: args.group,
    logger: makeLogger(),
    ...credentials(args),
    sendMsgTimeout: args.sendTimeout,
    namespace: args.namespace,
  });
  producer.on('error', err => emit('client_error', describeError(err)));
  await producer.ready();
  emit('started', { clientId: producer.clientId, group: args.group });

  let failures = 0;
  for (let i = 0; i < args.count; i++) {
    const tag = tags[i % tags.length];
    const keys = [ `${args.prefix}-key-${i}`, `${args.prefix}-k2-${i}` ];
    const body = padded(`${args.prefix} body ${i}`, args.bodySize);
    const msg = new Message(args.topic, tag, body);
    msg.keys = keys;
    if (args.delayLevel) {
      msg.delayTimeLevel = args.delayLevel;
    }
    try {
      const result = await producer.send(msg);
      emit('sent', {
        i,
        msgId: result.msgId,
        status: result.sendStatus,
        // ali-ons keeps the response header's string (extFields values are strings on the wire).
        queue: Number(result.messageQueue.queueId),
        broker: result.messageQueue.brokerName,
        offset: result.queueOffset,
        tags: tag,
        keys: keys.join(' '),
        body,
      });
    } catch (err) {
      failures++;
      emit('send_error', Object.assign({ i, tags: tag, keys: keys.join(' '), body }, describeError(err)));
    }
  }
  try {
    await producer.close();
  } catch (err) {
    // e.g. its UNREGISTER_CLIENT refused by the broker's ACL (keys with a wrong secret)
    emit('close_error', describeError(err));
  }
  emit('done', { sent: args.count - failures, failed: failures });
  return failures === 0 ? 0 : 1;
}

main().then(
  code => exit(code),
  err => {
    emit('fatal', describeError(err));
    process.stderr.write(`${err && err.stack}\n`);
    exit(2);
  }
);
