#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/graph_error_policy.hpp"
#include "domain/outbound.hpp"

namespace pqxx {
class connection_base;
}

// The SQL of agents' sends (API.md §3.4): the message row and its outbox entry, each attempt's
// claim and its outcome. The conversation actor decides; these statements apply its decisions
// under the cross-process guards (the unique client_message_id, the outbox row's state, the
// conversation's order).
namespace wachat::infra {

// What the conversation actor decides a send on.
struct send_facts {
  bool found = false;                               // the conversation exists in that site
  std::optional<std::int64_t> window_expires_at;    // unix s
  bool has_recipient = false;                       // the visitor has a phone or a BSUID
  bool marketing_opt_out = false;
  // An earlier send of this conversation with the request's client_message_id.
  std::optional<std::int64_t> earlier_message_id;
  std::string earlier_fingerprint;
  std::string earlier_message;  // its API JSON text (its status says how it stands)
};
// One query for a batch, a result per item in their order (`found` false when the conversation
// is not the site's).
struct facts_item {
  std::string site;
  std::int64_t conversation_id = 0;
  std::optional<std::string> client_message_id;
};
std::vector<send_facts> load_send_facts(pqxx::connection_base& conn, const std::vector<facts_item>& items);

struct send_attempt {
  bool claimed = false;  // false: sent, given up, held by another attempt, or behind an earlier one
  std::int64_t conversation_id = 0;
  std::string site_id;
  std::string body;      // Meta's body, with the recipient as the visitor's now
  int attempt = 0;       // 1 for the first
  bool no_recipient = false;
};
struct send_enqueued {
  // stale: decided on facts that are no longer true (enqueue_item::decided_on); nothing stored.
  enum class kind { queued, duplicate, unknown_reply, not_found, stale } what = kind::queued;
  std::int64_t message_id = 0;
  std::string fingerprint;  // duplicate: the earlier request's
  std::string message;      // the message's API JSON text
  // Queued and claimed in the same statement (enqueue_item::claim): its first attempt, as
  // begin_attempts would have claimed it.
  send_attempt claim;
};
// The facts a send was decided on (send_facts without an earlier send), as the conversation
// actor last read them.
struct decided_facts {
  std::optional<std::int64_t> window_expires_at;
  bool has_recipient = false;
  bool marketing_opt_out = false;
};

// For each send, one statement for all: the message (`queued`), its outbox entry and
// `message.created`, one result per item in their order. `reply_to` must name a message of the
// conversation (our id or its wamid). A concurrent send with the same client_message_id makes one
// a duplicate of it. Of any sites; each conversation once (std::logic_error otherwise).
struct enqueue_item {
  std::string site;  // the conversation's, else `not_found`
  std::int64_t conversation_id = 0;
  const domain::outbound_request* request = nullptr;
  // Set: claim the entry for its first attempt in the same statement, as begin_attempts does,
  // when its conversation has no other entry; the attempt is this many microseconds away, and
  // the doubt period counts from then. Never when the conversation's row changed after the
  // statement's snapshot (another process may have queued an earlier send the snapshot misses):
  // the entry is then `ready`, for begin_attempts' own look.
  std::optional<std::int64_t> claim_after_us;
  // Set: store the send only if the conversation's window and its visitor's recipient and
  // opt-out are still these (the conversation's row as locked, the visitor's as the statement
  // reads it), else `stale`: the actor decided on facts it had kept, not read for this send.
  std::optional<decided_facts> decided_on;
};
std::vector<send_enqueued> enqueue_sends(pqxx::connection_base& conn, const std::vector<enqueue_item>& items);

// A claim as an attempt holds it: the entry and the attempt's number.
struct held_claim {
  std::int64_t message_id = 0;
  int attempt = 0;
};

// Gives back claims whose attempt never called Meta (the worker holding them died, their
// conversation never asked, or the attempt came after its slot had passed): `ready` again, with
// the attempt not counted, so the next attempt claims them at once instead of after the doubt
// period. Only an entry still `sending` under that attempt's number is given back: one the
// doubt period released, and maybe another attempt claimed since, is left alone.
void release_claims(pqxx::connection_base& conn, const std::vector<held_claim>& claims);

// Renews claims still held for attempts that have not reached Meta yet (a file uploading first):
// attempt_at moves to now, so that the doubt period, which counts from it, never passes while
// the file is still on its way and hands the entry to another attempt. Returns the ids still
// held: an entry another attempt took (or the sweep gave back) meanwhile is not this one's to
// send any more.
std::vector<std::int64_t> renew_claims(pqxx::connection_base& conn, const std::vector<held_claim>& claims);

// Claims each entry for one attempt (committed before Meta is called, so a crash leaves it
// `sending`: in doubt), one result per id in their order. Only a `ready` entry with no earlier
// entry of its conversation is claimed, so a conversation's messages reach Meta in order
// whichever process sends them.
std::vector<send_attempt> begin_attempts(pqxx::connection_base& conn, const std::vector<std::int64_t>& message_ids);

// Meta took them: each wamid, status `sent` (or a later one a status webhook already reported),
// the entries gone, `message.updated` for each. Returns each message's API JSON text, in their
// order ("" for a message no longer there, or not of that site). Of any sites.
struct sent_record {
  std::int64_t message_id = 0;
  std::string wamid;
  std::string site;
};
std::vector<std::string> record_sent(pqxx::connection_base& conn, const std::vector<sent_record>& sent);
// Given up: status `failed` with Meta's error, the entry kept for a retry by hand,
// `message.updated`. `window_closed_at`: Meta refused for a closed window, so the conversation's
// window ends then too (unless a later customer message is known), with `conversation.updated`.
std::string record_failed(pqxx::connection_base& conn, std::int64_t message_id, const domain::graph_error& error,
                          bool retryable, std::optional<std::int64_t> window_closed_at = std::nullopt);
// To be tried again after `delay_ms`; the message stays `queued`.
void record_retry(pqxx::connection_base& conn, std::int64_t message_id, std::int64_t delay_ms,
                  const domain::graph_error& error);

std::string load_message_text(pqxx::connection_base& conn, std::int64_t message_id);

// An agent's reaction (API.md §3.4): its target in the conversation (our id or its wamid; it
// must have a wamid Meta knows) and where Meta delivers it (the visitor's phone, else BSUID).
struct reaction_target {
  std::int64_t message_id = 0;
  std::string wamid;
  domain::recipient to;
};
std::optional<reaction_target> find_reaction_target(pqxx::connection_base& conn, std::int64_t conversation_id,
                                                    const std::string& ref);
// The agent's side of the target's reactions (one per side; an empty emoji removes it), with
// `message.updated`. Returns the message's API JSON text.
std::string set_agent_reaction(pqxx::connection_base& conn, std::int64_t message_id, const std::string& emoji);

// The customer `key` (phone, else BSUID) of the site stopped (true) or resumed marketing
// messages: a keyword in a message of theirs, under the key it came with.
void set_marketing_opt_out(pqxx::connection_base& conn, const std::string& site, const std::string& key, bool opt_out);
// Opts out the customer of the conversation `message_id` is in (Meta's 131050 on it): found by
// the message, as they are now, whatever phone or BSUID they had when it was queued.
void set_marketing_opt_out_of_message(pqxx::connection_base& conn, std::int64_t message_id);

// What a retry by hand (POST .../messages/{message_id}/retry) is decided on.
struct resend_facts {
  bool found = false;        // the message exists in that conversation of that site
  bool failed_send = false;  // it is an agent's send that was given up (its entry kept)
  bool is_template = false;
  bool has_recipient = false;
  std::optional<std::int64_t> window_expires_at;
  std::string message;  // its API JSON text
};
resend_facts load_resend_facts(pqxx::connection_base& conn, const std::string& site, std::int64_t conversation_id,
                               std::int64_t message_id);
// The given-up send becomes `queued` again with a fresh outbox entry; nullopt when it is no
// longer a given-up send (another request retried it first).
std::optional<std::string> requeue_failed(pqxx::connection_base& conn, std::int64_t message_id);

// An outbox entry nobody is on: due for a while (its actor stopped, or its process did), or an
// attempt whose answer was lost and whose doubt period is over (made `ready` here).
struct resumable_send {
  std::int64_t message_id = 0;
  std::string site;
  std::string key;  // the customer's key: their phone, else their BSUID
};
std::vector<resumable_send> sweep_outbox(pqxx::connection_base& conn, std::int64_t doubt_ms, int limit);

}  // namespace wachat::infra
