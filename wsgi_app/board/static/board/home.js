// The board list: create a board, answer invitations.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const newBoard = document.getElementById("new-board");
  newBoard.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await api("POST", "/api/boards/", { name: new FormData(newBoard).get("name") });
      location.href = `/boards/${data.id}/`;
    } catch (error) { showError(error); }
  });
  for (const item of document.querySelectorAll("[data-invitation-id]")) {
    const id = item.dataset.invitationId;
    item.querySelector(".accept").addEventListener("click", async () => {
      try {
        const { data } = await api("POST", `/api/invitations/${id}/accept`);
        location.href = `/boards/${data.id}/`;
      } catch (error) { showError(error); }
    });
    item.querySelector(".decline").addEventListener("click", async () => {
      try {
        await api("POST", `/api/invitations/${id}/decline`);
        item.remove();
      } catch (error) { showError(error); }
    });
  }
});
