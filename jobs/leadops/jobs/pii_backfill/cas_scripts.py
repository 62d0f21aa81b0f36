"""The compare-and-set Lua scripts that rewrite a value only if it still holds what was read.

Nothing is ever deleted and re-pushed, so a message pushed meanwhile is never dropped, and a
value someone changed meanwhile is left alone (the caller counts it as a conflict).
"""

from __future__ import annotations

# One call covers the rewrites of several keys (KEYS), so a round of reads needs a few calls,
# not one per key. ARGV = (key number in KEYS, where it was read, value read, replacement)
# quadruples; per quadruple the reply is 1 (rewritten), 0 (changed meanwhile: left alone) or
# the error text for a key that is no longer of this type (pcall: the other keys go on).
# Lists: the element is LSET at the index it was read from if it still holds exactly what
# was read, else wherever LPOS finds it (pushes on the left shift indexes).
CAS_LIST = """
local done = {}
for i = 1, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i])]
  local pos = tonumber(ARGV[i + 1])
  local now = redis.pcall('LINDEX', key, pos)
  if type(now) == 'table' and now.err then
    done[#done + 1] = now.err
  else
    if now ~= ARGV[i + 2] then
      pos = redis.call('LPOS', key, ARGV[i + 2])
    end
    if pos then
      redis.call('LSET', key, pos, ARGV[i + 3])
      done[#done + 1] = 1
    else
      done[#done + 1] = 0
    end
  end
end
return done
"""

# Hashes: the field is HSET only if HGET still returns what was read.
CAS_HASH = """
local done = {}
for i = 1, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i])]
  local now = redis.pcall('HGET', key, ARGV[i + 1])
  if type(now) == 'table' and now.err then
    done[#done + 1] = now.err
  elseif now == ARGV[i + 2] then
    redis.call('HSET', key, ARGV[i + 1], ARGV[i + 3])
    done[#done + 1] = 1
  else
    done[#done + 1] = 0
  end
end
return done
"""

# Rewrites per script call: keeps each script short so Redis is never blocked for long.
CAS_CHUNK = 64
