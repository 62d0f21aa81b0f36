-- Argo CD health check for leadops.io/LeadModel: Healthy / Progressing / Degraded from the
-- conditions the LeadOps operator writes (Ready, RolledOut, Degraded). Lua 5.1 (gopher-lua).
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

-- Ready=False for these reasons needs a human (a spec edit), not more waiting.
local needs_fix = {
  InvalidSpec = true,
  UnknownModelVersion = true,
  PinnedVersionRejected = true,
  PinnedVersionRolledBack = true,
  NameConflict = true,
  ApplyFailed = true,
}

if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the LeadOps operator to reconcile"
  return hs
end

local conditions = obj.status.conditions
local generation = obj.metadata.generation or 0
local ready = condition(conditions, "Ready")
local observed = obj.status.observedGeneration
if observed == nil and ready ~= nil then
  observed = ready.observedGeneration
end
if observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local degraded = condition(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end

local rolled_out = condition(conditions, "RolledOut")
if rolled_out ~= nil and (rolled_out.reason == "RolloutInProgress" or rolled_out.reason == "RollbackInProgress") then
  hs.status = "Progressing"
  hs.message = describe(rolled_out)
  return hs
end

if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  local serving = obj.status.servingVersion
  if serving ~= nil and serving ~= "" then
    hs.message = "Serving model version " .. serving
    if obj.status.auc ~= nil and obj.status.auc ~= "" then
      hs.message = hs.message .. " (AUC " .. obj.status.auc .. ")"
    end
  else
    hs.message = describe(ready)
  end
  return hs
end

if needs_fix[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs
