import { EventStreamCodec, type MessageHeaders } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import type { StreamFailure } from "./errors.ts";

/**
 * AWS event-stream framing of InvokeEndpointWithResponseStream (the body of its 200 answer,
 * `application/vnd.amazon.eventstream`): each PayloadPart event carries bytes of the model's
 * answer; an exception message ends the stream with an error the SDK throws from its iterator.
 */
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const text = (value: string) => ({ type: "string" as const, value });

export function payloadPart(bytes: string): Uint8Array {
  const headers: MessageHeaders = { ":message-type": text("event"), ":event-type": text("PayloadPart"), ":content-type": text("application/octet-stream") };
  return codec.encode({ headers, body: fromUtf8(bytes) });
}

export function exceptionMessage(failure: StreamFailure): Uint8Array {
  const headers: MessageHeaders = { ":message-type": text("exception"), ":exception-type": text(failure.exceptionType), ":content-type": text("application/json") };
  return codec.encode({ headers, body: fromUtf8(JSON.stringify(failure.body)) });
}
