-- Argo CD health check for convoy's kinds (Project, ServiceCluster, GracefulShutdownPolicy,
-- LocalityLoadBalancing). They report kstatus-style conditions: Ready, and Reconciling or
-- Stalled while not ready. See docs/argocd.md.
local hs = { status = "Progressing", message = "Waiting for convoy to report on this generation" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  return hs
end
local ready = nil
local stalled = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
  elseif c.type == "Stalled" and c.status == "True" then
    stalled = c
  end
end
if ready ~= nil and ready.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and ready.observedGeneration < obj.metadata.generation then
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil then
  hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
end
return hs
