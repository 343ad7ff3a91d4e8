export { injectContext, extractContext, carrierFromHeaders, type Carrier } from "./carrier.js";
export { withPublishSpan, withProcessSpan, type PublishOptions, type ProcessOptions } from "./messaging.js";
export { withChatSpan, recordChatResponse, type ChatRequestInfo, type ChatResponseInfo } from "./genai.js";
export { recordError, errorType } from "./errors.js";
export { createLogger, type Logger } from "./logger.js";
