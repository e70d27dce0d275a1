#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/graph_error_policy.hpp"
#include "domain/job_retry.hpp"

// The rules of customers' media (API.md §3.6, META.md "Media"): what Meta may send for each
// type, how large, what the stored file is called, and how a byte range is read. Pure: the
// media worker and the /media handler apply them.
namespace wachat::domain {

// The most bytes Meta allows for a message of `content_type` (image, video, audio, document,
// sticker); 0 for a type that carries no media.
std::uint64_t media_size_limit(std::string_view content_type, bool animated_sticker);

// "Audio/OGG; codecs=opus" -> "audio/ogg": the type without parameters, lower case, trimmed.
std::string mime_essence(std::string_view mime);

// Whether `mime` (parameters allowed) is a type Meta sends for `content_type`. Documents may be
// any well-formed type; the others only what META.md lists (and what WhatsApp clients record:
// image/webp stickers, audio/ogg voice notes with `codecs=opus`).
bool media_mime_accepted(std::string_view content_type, std::string_view mime);

// The usual extension (without the dot) of a MIME type; "bin" when unknown.
std::string extension_for_mime(std::string_view mime);

// The name a stored file gets: the customer's own (documents) reduced to its last path
// component, without control characters, NUL, invalid UTF-8 or leading dots, and at most 120
// bytes (the extension kept); else `<type>_<message id>.<extension of its MIME type>`.
std::string media_file_name(std::string_view given, std::string_view content_type,
                            std::int64_t message_id, std::string_view mime);

// A `Range` request header against a file of `size` bytes (RFC 9110 §14): one range of bytes is
// served as such; a malformed header, another unit or several ranges get the whole file (as the
// RFC allows); a range starting past the end is unsatisfiable (416).
struct byte_range_answer {
  enum class kind { whole, partial, unsatisfiable } what = kind::whole;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};
byte_range_answer read_byte_range(std::string_view header, std::uint64_t size);

// Whether Graph's answer to `GET /{media-id}` says the media is gone for good: an id Meta does
// not know (code 100, HTTP 404: ids live 7 days) or a request Meta refuses as such. A refused
// token, a rate limit or an outage may pass.
bool media_lookup_failed_for_good(const graph_error& e);

// What a signed /media URL's signature covers: the blob key and the expiry (unix seconds).
std::string media_signature_payload(std::string_view key, std::int64_t expires);

// Whether `sha256` as Meta wrote it (hex, or base64 as in webhooks) names `digest`.
bool sha256_names(std::string_view sha256, std::string_view digest_hex, std::string_view digest_base64);

}  // namespace wachat::domain
