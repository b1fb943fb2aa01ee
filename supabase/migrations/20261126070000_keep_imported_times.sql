-- An imported chat keeps its times (R7.2: the JSON export imports back losslessly). A user may
-- give created_at (chats, messages) and updated_at (chats) when creating a row of their own;
-- updates still move updated_at forward by the trigger, as before.
grant insert (created_at, updated_at) on table public.chats to authenticated;
grant insert (created_at) on table public.messages to authenticated;

-- A message moves its chat up the list only when it is newer than the chat's time: an
-- imported message, older, leaves the imported chat where its own time puts it.
create or replace function public.touch_chat_of_message()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  update public.chats set pinned = pinned
  where id = new.chat_id and updated_at < new.created_at;
  return null;
end;
$$;

revoke execute on function public.touch_chat_of_message() from public, anon, authenticated;
