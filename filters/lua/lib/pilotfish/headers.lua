-- pilotfish.headers: small helpers for Lua filters (shipped with pilotfish;
-- on package.path as require("pilotfish.headers")).
local M = {}

-- Copies every header of `map` (a stream handle header object) into a plain
-- table; repeated headers are joined with ",".
function M.to_table(map)
  local t = {}
  for k, v in pairs(map) do
    if t[k] then t[k] = t[k] .. "," .. v else t[k] = v end
  end
  return t
end

-- Sets `name` to `value` unless it is already present.
function M.set_default(map, name, value)
  if map:get(name) == nil then map:add(name, value) end
end

return M
